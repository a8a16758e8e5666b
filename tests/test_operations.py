"""Operating the service: database outages, SIGTERM, logs and proxies, on real processes."""

import asyncio
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from bookshelf import contract
from bookshelf.config import DbParams
from tests.conftest import API_KEY, LiveServer, Postgres, server_env, start_server

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@contextmanager
def database_down(postgres: Postgres) -> Iterator[None]:
    postgres.stop()
    try:
        yield
    finally:
        postgres.start()


@contextmanager
def database_frozen(postgres: Postgres) -> Iterator[None]:
    """Every PostgreSQL process stopped in its tracks: a hung host or a network partition."""
    postmaster = psutil.Process(postgres.postmaster_pid())
    processes = [postmaster, *postmaster.children()]
    for process in processes:
        process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGCONT)


async def test_requests_fail_fast_with_503_while_the_database_is_down_then_recover(
    client: httpx.AsyncClient, postgres: Postgres
) -> None:
    created = (await client.post("/books", json={"name": "Outage", "author": "Ops"})).json()
    with database_down(postgres):
        for path in (f"/books/{created['id']}", "/books?q=out"):
            started = time.monotonic()
            response = await client.get(path)
            assert time.monotonic() - started < 3
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "5"
            assert response.headers["content-type"] == "application/problem+json"
        assert (await client.get("/health/ready")).status_code == 503
        assert (await client.get("/health/live")).status_code == 200
    # Back without a restart of the service: the pool reconnects on its own.
    assert (await client.get(f"/books/{created['id']}")).json()["name"] == created["name"]
    assert (await client.get("/health/ready")).status_code == 200


async def test_requests_fail_fast_with_503_while_the_database_hangs(
    client: httpx.AsyncClient, postgres: Postgres
) -> None:
    created = (await client.post("/books", json={"name": "Hang", "author": "Ops"})).json()
    # Every pooled connection open (an earlier outage may have closed some): the PATCH then
    # reaches the database, rather than waiting to connect to it.
    await asyncio.gather(*(client.get(f"/books/{created['id']}") for _ in range(8)))
    with database_frozen(postgres):
        started = time.monotonic()
        *responses, patch = await asyncio.gather(
            *(client.get(f"/books/{created['id']}") for _ in range(3)),
            client.patch(f"/books/{created['id']}", json={"pages": 7}),
        )
        elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [503, 503, 503]
    assert [r.json()["outcome_unknown"] for r in responses] == [False, False, False]
    # The PATCH reached a database that stopped answering: it may yet commit, and says so.
    assert (patch.status_code, patch.json()["outcome_unknown"]) == (503, True)
    assert elapsed < 6  # statement timeout (3 s) + the cancel's connect timeout (2 s)
    for _ in range(20):  # connections that timed out are replaced; give it a moment
        if (await client.get(f"/books/{created['id']}")).status_code == 200:
            break
        await asyncio.sleep(0.25)
    assert (await client.get(f"/books/{created['id']}")).json() == created


async def test_a_write_that_got_no_pooled_connection_says_it_was_not_sent(
    client: httpx.AsyncClient, db_params: DbParams
) -> None:
    """It tells a write that never reached the database from one that may yet commit."""
    created = (await client.post("/books", json={"name": "Busy", "author": "Ops"})).json()
    url = f"/books/{created['id']}"
    conn = await asyncpg.connect(**db_params.connect_kwargs())
    try:
        async with conn.transaction():
            await conn.execute("SELECT * FROM book FOR UPDATE")
            # Four PATCHes hold the test pool's four connections, waiting on our row lock.
            holding = [asyncio.create_task(client.patch(url, json={"pages": n})) for n in (1, 2)]
            holding += [asyncio.create_task(client.patch(url, json={"pages": n})) for n in (3, 4)]
            await asyncio.sleep(0.3)
            late = await client.patch(url, json={"pages": 9})  # waits for a connection
    finally:
        await conn.close()
    assert late.status_code == 503
    assert late.json()["outcome_unknown"] is False
    assert [r.status_code for r in await asyncio.gather(*holding)] == [200] * 4
    assert (await client.get(url)).json()["pages"] in {1, 2, 3, 4}


async def test_a_write_that_deadlocks_gets_409_and_changes_nothing(
    client: httpx.AsyncClient, db_params: DbParams
) -> None:
    """Two writes swapping ISBNs deadlock in PostgreSQL; the one it aborts gets a 409."""
    a = await client.post("/books", json={"name": "A", "author": "X", "isbn": "9780306406157"})
    b = await client.post("/books", json={"name": "B", "author": "Y", "isbn": "9780261102217"})
    a_book, b_book = a.json(), b.json()
    conn = await asyncpg.connect(**db_params.connect_kwargs())
    try:
        async with conn.transaction():
            await conn.execute("UPDATE book SET pages = 1 WHERE id = $1", b_book["id"])
            # The PATCH locks A, then waits on us to learn whether B keeps its ISBN...
            patch = asyncio.create_task(
                client.patch(f"/books/{a_book['id']}", json={"isbn": b_book["isbn"]})
            )
            await asyncio.sleep(0.3)
            # ...while we wait on A: a cycle. The PATCH waited first, so PostgreSQL's check
            # (after deadlock_timeout, 1 s) finds the cycle there and aborts the PATCH.
            await conn.execute("UPDATE book SET pages = 2 WHERE id = $1", a_book["id"])
            response = await patch
            await conn.execute("ROLLBACK; BEGIN")  # leave both books as they were
    finally:
        await conn.close()
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Concurrent change"
    assert (await client.get(f"/books/{a_book['id']}")).json() == a_book
    assert (await client.get(f"/books/{b_book['id']}")).json() == b_book


def test_sigterm_lets_a_slow_request_finish_then_exits_0(
    live_server: LiveServer, db_params: DbParams
) -> None:
    book = httpx.post(
        f"{live_server.url}/books", json={"name": "Slow", "author": "S"}, headers=AUTH
    )
    url = f"{live_server.url}/books/{book.json()['id']}"
    result: dict[str, httpx.Response] = {}

    async def hold_row_lock(seconds: float) -> None:
        conn = await asyncpg.connect(**db_params.connect_kwargs())
        async with conn.transaction():
            await conn.execute("SELECT * FROM book FOR UPDATE")
            patch = threading.Thread(
                target=lambda: result.update(
                    response=httpx.patch(url, json={"pages": 7}, headers=AUTH, timeout=30)
                )
            )
            patch.start()
            await asyncio.sleep(0.5)  # the PATCH is now waiting on our lock
            live_server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(seconds)
            assert _refuses_connections(live_server.url)
        await conn.close()
        patch.join(timeout=10)

    started = time.monotonic()
    asyncio.run(hold_row_lock(1.5))
    assert result["response"].status_code == 200
    assert result["response"].json()["pages"] == 7
    assert live_server.process.wait(timeout=contract.DRAIN_SECONDS) == 0
    assert time.monotonic() - started < contract.DRAIN_SECONDS


def _refuses_connections(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_server_returns_413_for_a_chunked_body_over_1_mib(live_server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "x", "author": "y", "publisher": "'
        for _ in range(40):
            yield b"x" * 32768
        yield b'"}'

    response = httpx.post(
        f"{live_server.url}/books",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_server_returns_408_when_the_body_stops_arriving(db_params: DbParams) -> None:
    server = start_server(server_env(db_params, BOOKSHELF_BODY_TIMEOUT="1"))
    try:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(
                b"POST /books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"name": "Never fin'
            )
            started = time.monotonic()
            answer = conn.recv(4096)
    finally:
        server.stop()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"application/problem+json" in answer
    assert time.monotonic() - started < 5


def test_server_logs_one_json_line_per_request_without_secrets(live_server: LiveServer) -> None:
    httpx.get(
        f"{live_server.url}/books?name=secret-query", headers={"X-Request-ID": "trace-42", **AUTH}
    )
    httpx.post(f"{live_server.url}/books", json={"name": "Logged", "author": "L"}, headers=AUTH)
    live_server.process.terminate()
    output = live_server.output()
    requests = [
        entry
        for entry in map(json.loads, output.splitlines())
        if entry.get("logger") == "bookshelf.access"
    ]
    by_id = {entry["request_id"]: entry for entry in requests}
    assert by_id["trace-42"]["path"] == "/books"
    assert by_id["trace-42"]["status"] == 200
    assert {"method", "path", "status", "duration_ms", "request_id"} <= by_id["trace-42"].keys()
    assert [e["method"] for e in requests if e["path"] == "/books"] == ["GET", "POST"]
    assert API_KEY not in output
    assert "secret-query" not in output
    assert "Logged" not in output


@pytest.mark.parametrize(("trusted", "scheme"), [("127.0.0.1", "https"), ("10.0.0.0/8", "http")])
def test_server_trusts_proxy_headers_only_from_configured_addresses(
    db_params: DbParams, trusted: str, scheme: str
) -> None:
    server = start_server(server_env(db_params, BOOKSHELF_FORWARDED_ALLOW_IPS=trusted))
    try:
        response = httpx.get(
            f"{server.url}/books/", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False
        )
        assert response.status_code == 307
        assert response.headers["Location"].startswith(f"{scheme}://")
    finally:
        server.stop()


def test_dev_serves_on_an_embedded_database_that_keeps_its_data(tmp_path: Path) -> None:
    """`make run` from nothing: an embedded PostgreSQL under BOOKSHELF_DATA_DIR, kept across
    restarts."""
    data = tmp_path / "fresh-clone" / ".data"  # not there yet, as in a fresh clone
    env = server_env(DbParams("", 0, "", "", None, "disable"), BOOKSHELF_DATA_DIR=str(data))
    for key in (contract.DB_HOST, contract.DB_PORT, contract.DB_NAME, contract.DB_USER):
        env.pop(key)
    first = start_server(env, sys.executable, "-m", "bookshelf.cli", "dev")
    created = httpx.post(f"{first.url}/books", json={"name": "Kept", "author": "Disk"})
    first.stop()
    assert created.status_code == 201
    assert "Docs:  http://127.0.0.1:" in first.output()
    assert (data / "postgres" / "PG_VERSION").exists()

    second = start_server(env, sys.executable, "-m", "bookshelf.cli", "dev")
    try:
        found = httpx.get(f"{second.url}/books", params={"name": "kept"}).json()["items"]
    finally:
        second.stop()
    assert [book["id"] for book in found] == [created.json()["id"]]
