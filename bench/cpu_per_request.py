"""CPU time the app spends per request, in process: the steady figure for A/B changes.

wrk numbers on a shared 2-CPU machine move by ±30% between runs; the CPU one request costs the
app moves by a few percent. This drives the ASGI app directly (no server, no sockets), against a
fresh embedded PostgreSQL seeded like `make bench`, and prints the minimum over 7 rounds of the
process CPU time per request. The access log goes to stdout: redirect it to a file, as a
container's log driver would take it (`> /tmp/access.log`), and read the result on stderr.

Usage: .venv/bin/python bench/cpu_per_request.py [live get_by_id by_name search]
"""

import asyncio
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import seed  # noqa: E402
from bookshelf import migrate  # noqa: E402
from bookshelf.config import DbParams, get_settings  # noqa: E402
from bookshelf.logs import configure_logging  # noqa: E402
from bookshelf.main import create_app  # noqa: E402

ROUNDS, REQUESTS = 7, 2000


def _request(workload: str, i: int, names: list[str], terms: list[str]) -> tuple[str, bytes]:
    if workload == "live":
        return "/health/live", b""
    if workload == "get_by_id":
        return f"/books/{1 + i % seed.BOOKS}", b""
    if workload == "by_name":
        return "/books", b"name=" + names[i % len(names)].encode()
    return "/books", b"limit=20&q=" + terms[i % len(terms)].encode()


async def measure(params: DbParams, workloads: list[str], inputs: Path) -> None:
    names = (inputs / "names.txt").read_text().split("\n")
    terms = (inputs / "terms.txt").read_text().split("\n")
    names, terms = [n for n in names if n], [t for t in terms if t]
    settings = get_settings(
        db_host=params.host, db_port=params.port, db_name=params.database, db_user=params.user
    )
    configure_logging("info")
    app = create_app(settings)
    async with app.router.lifespan_context(app):

        async def call(workload: str, i: int) -> None:
            path, query = _request(workload, i, names, terms)
            sent: list[Any] = []
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                "query_string": query, "root_path": "", "headers": [(b"host", b"bench")],
                "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
            }  # fmt: skip

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await app(scope, receive, send)
            assert sent[0]["status"] == 200, sent

        for workload in workloads:
            for i in range(500):  # warm: prepared statements, pool, caches
                await call(workload, i)
            best = float("inf")
            for _ in range(ROUNDS):
                started = time.process_time()
                for i in range(REQUESTS):
                    await call(workload, i)
                best = min(best, time.process_time() - started)
            print(f"{workload:10} {best / REQUESTS * 1e6:6.0f} µs CPU per request", file=sys.stderr)


def main() -> None:
    workloads = sys.argv[1:] or ["live", "get_by_id", "by_name", "search"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            server.psql("CREATE DATABASE bench;")
            socket_dir = str(server.get_postmaster_info().socket_dir)
            params = DbParams(socket_dir, 5432, "bench", "postgres", None, "disable")
            asyncio.run(migrate.migrate(params))
            books = seed.books()
            seed.write_wrk_inputs(books, Path(tmp) / "inputs")

            async def load() -> None:
                conn = await asyncpg.connect(**params.connect_kwargs())
                await seed.seed_ours(conn, books)
                await conn.close()

            asyncio.run(load())
            uvloop.run(measure(params, workloads, Path(tmp) / "inputs"))
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
