"""Fixtures: one real embedded PostgreSQL per session, a migrated database, and the app
served over HTTP (in process through ASGI, or as a real `bookshelf serve` subprocess).

Each test starts from an empty `book` table.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from bookshelf import contract, migrate
from bookshelf.config import DbParams, Settings
from bookshelf.main import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
    import pgserver
    from pgserver import _commands as pg_commands

API_KEY = "test-key-0123456789abcdef"
TEST_DATABASE = "bookshelf_test"


@dataclass
class Postgres:
    """The embedded server, with the means to take it away and bring it back."""

    server: Any
    pgdata: Path
    socket_dir: str

    def admin(self, database: str = "postgres") -> DbParams:
        return DbParams(self.socket_dir, 5432, database, "postgres", None, "disable")

    def psql(self, sql: str) -> str:
        return str(self.server.psql(sql))

    def stop(self) -> None:
        pg_commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._user)

    def start(self) -> None:
        args = ["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log")]
        pg_commands.pg_ctl([*args, "start"], pgdata=self.pgdata, user=self._user)

    def postmaster_pid(self) -> int:
        # Read afresh: a restart (see stop/start) gives the postmaster a new pid.
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def reload(self) -> None:
        pg_commands.pg_ctl(["reload"], pgdata=self.pgdata, user=self._user)

    @property
    def _user(self) -> str | None:
        return self.server.system_user  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    pgdata = tmp_path_factory.mktemp("pg") / "data"
    # We stop it ourselves: after a test restarts it, pgserver tracks a stale postmaster.
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    postgres = Postgres(server, pgdata, str(server.get_postmaster_info().socket_dir))
    yield postgres
    postgres.stop()


@pytest.fixture(scope="session")
def db_params(postgres: Postgres) -> DbParams:
    postgres.psql(f"DROP DATABASE IF EXISTS {TEST_DATABASE}; CREATE DATABASE {TEST_DATABASE};")
    params = postgres.admin(TEST_DATABASE)
    asyncio.run(migrate.migrate(params))
    return params


def settings_for(params: DbParams, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_host": params.host,
        "db_port": params.port,
        "db_name": params.database,
        "db_user": params.user,
        "db_pool_size": 4,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(db_params: DbParams) -> Settings:
    return settings_for(db_params, bookshelf_api_keys=API_KEY)


@asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(settings) as c:
        c.headers["Authorization"] = f"Bearer {API_KEY}"
        yield c


@pytest.fixture(autouse=True)
async def _empty_table(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "db_params" in request.fixturenames:
        params: DbParams = request.getfixturevalue("db_params")
        conn = await asyncpg.connect(**params.connect_kwargs())
        try:
            await conn.execute("TRUNCATE book RESTART IDENTITY")
        finally:
            await conn.close()


@pytest.fixture
def book_data() -> Callable[..., dict[str, Any]]:
    def make(**fields: Any) -> dict[str, Any]:
        return {"name": "The Left Hand of Darkness", "author": "Ursula K. Le Guin", **fields}

    return make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        """Everything the server printed, once it has exited."""
        self.process.wait(timeout=30)
        return self.log.read_text()

    def stop(self) -> None:
        """Stop the server and, if it was started in a session of its own, everything in it:
        a test that fails half-way must not leave workers running after pytest."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def server_env(params: DbParams, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "BOOKSHELF_"))}
    env.pop(contract.DATABASE_URL, None)
    env.update(
        {
            contract.DB_HOST: params.host,
            contract.DB_PORT: str(params.port),
            contract.DB_NAME: params.database,
            contract.DB_USER: params.user,
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def start_server(env: dict[str, str], *command: str) -> LiveServer:
    port = free_port()
    args = command or (sys.executable, "-m", "bookshelf.cli", "serve", "--workers", "1")
    # A file, not a pipe: a pipe nobody reads fills up and blocks the server.
    log = Path(tempfile.mkstemp(prefix="bookshelf-server-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*args, "--port", str(port)], env=env, stdout=out, stderr=out, start_new_session=True
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_ready(server: LiveServer, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}{contract.READY_PATH}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.process.kill()
    raise RuntimeError(f"server not ready in {timeout}s:\n{server.output()}")


@pytest.fixture
def live_server(db_params: DbParams) -> Iterator[LiveServer]:
    server = start_server(server_env(db_params, BOOKSHELF_API_KEYS=API_KEY))
    yield server
    server.stop()
