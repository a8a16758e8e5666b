"""How fast `bookshelf import` loads 10,000 rows into a local `bookshelf serve`.

    .venv/bin/python bench/import_speed.py [--rows 10000] [--batch-sizes 100,500,1000]

Generates a Goodreads-style export with unique titles (half with ISBNs) in a temporary
folder, starts an embedded PostgreSQL and one `bookshelf serve` worker on it, then times the
importer in this process (reading, mapping, HTTP and SQL; not interpreter start-up) once per
batch size, on an empty table each time. Not part of the test suite: timings are not tests.
"""

import argparse
import asyncio
import csv
import io
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bookshelf import importer, migrate
from bookshelf.config import DbParams

HEADER = (
    "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,ISBN13,My Rating,Average Rating,"
    "Publisher,Binding,Number of Pages,Year Published,Original Publication Year,Date Read,"
    "Date Added,Bookshelves,Bookshelves with positions,Exclusive Shelf,My Review,Spoiler,"
    "Private Notes,Read Count,Recommended For,Recommended By,Owned Copies,"
    "Original Purchase Date,Original Purchase Location,Condition,Condition Description,BCID"
).split(",")


def isbn13(n: int) -> str:
    body = f"978{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def export(rows: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for i in range(rows):
        isbn = f'="{isbn13(100_000 + i)}"' if i % 2 else '=""'
        values = dict.fromkeys(HEADER, "")
        values.update(
            {
                "Book Id": str(i),
                "Title": f"Benchmark Title {i} (Series, #{i % 7})",
                "Author": f"Author  {i % 500}",
                "ISBN13": isbn,
                "Publisher": "Bench Press",
                "Number of Pages": str(100 + i % 900),
                "Year Published": str(1900 + i % 120),
                "My Review": "A review, with <br/> HTML\nand a newline.",
            }
        )
        writer.writerow(values[h] for h in HEADER)
    return buffer.getvalue()


def start_postgres(folder: Path) -> tuple[Any, DbParams]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    server = pgserver.get_server(folder / "pg", cleanup_mode="delete")
    server.psql("CREATE DATABASE bench;")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    return server, DbParams(socket_dir, 5432, "bench", "postgres", None, "disable")


def start_service(params: DbParams, port: int) -> subprocess.Popen[bytes]:
    env = {
        "DB_HOST": params.host,
        "DB_PORT": str(params.port),
        "DB_NAME": params.database,
        "DB_USER": params.user,
        "BOOKSHELF_LOG_LEVEL": "warning",
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-m", "bookshelf.cli", "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--workers", "1"], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the service did not start")


async def truncate(params: DbParams) -> None:
    conn = await asyncpg.connect(**params.connect_kwargs())
    try:
        await conn.execute("TRUNCATE book RESTART IDENTITY")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch-sizes", default="100,500,1000")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "export.csv"
        path.write_text(export(args.rows))
        server, params = start_postgres(folder)
        try:
            _measure(args, path, params)
        finally:
            # Stop PostgreSQL before its folder goes with the temporary directory; left to
            # pgserver's exit hook, it would find the folder gone and leave the server running.
            server.cleanup()


def _measure(args: argparse.Namespace, path: Path, params: DbParams) -> None:
    asyncio.run(migrate.migrate(params))
    service = start_service(params, args.port)
    try:
        for size in (int(s) for s in args.batch_sizes.split(",")):
            asyncio.run(truncate(params))
            cli = argparse.ArgumentParser()
            importer.add_arguments(cli)
            options = cli.parse_args(
                [str(path), "--url", f"http://127.0.0.1:{args.port}", "--batch-size", str(size)]
            )
            summary = io.StringIO()
            started = time.perf_counter()
            code = importer.run(options, out=summary, err=io.StringIO())
            seconds = time.perf_counter() - started
            assert code == 0, summary.getvalue()
            assert f"created     {args.rows:>6}" in summary.getvalue(), summary.getvalue()
            print(
                f"batch {size:>5}: {args.rows} rows in {seconds:.2f} s "
                f"= {args.rows / seconds:,.0f} rows/s"
            )
    finally:
        service.terminate()
        service.wait(timeout=30)


if __name__ == "__main__":
    main()
