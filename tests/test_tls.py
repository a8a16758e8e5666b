"""TLS to the database, as on AWS: RDS with `rds.force_ssl=1` and the task's `DB_SSLMODE=require`.

The embedded PostgreSQL is built without OpenSSL, so a relay plays RDS's part: it listens on
TCP, answers PostgreSQL's SSLRequest, terminates TLS with a self-signed certificate and passes
the decrypted stream to the embedded server. Like RDS with force_ssl, it refuses clients that
do not ask for TLS. The app and its migrations must get through it.
"""

import asyncio
import contextlib
import shutil
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from bookshelf import migrate
from bookshelf.config import DbParams
from tests.conftest import Postgres, serve_in_process, settings_for

SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's "may we speak TLS?" message
DATABASE = "bookshelf_tls"


@dataclass
class TlsRelay:
    port: int
    tls_versions: list[str] = field(default_factory=list)
    refused_plain: int = 0

    def params(self, sslmode: str = "require") -> DbParams:
        return DbParams("127.0.0.1", self.port, DATABASE, "postgres", None, sslmode)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the relay's certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.crt"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.crt", folder / "server.key")
    return context


@pytest.fixture
async def relay(postgres: Postgres, certificate: ssl.SSLContext) -> AsyncIterator[TlsRelay]:
    admin = await asyncpg.connect(**postgres.admin().connect_kwargs())
    await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    await admin.execute(f"CREATE DATABASE {DATABASE}")
    await admin.close()
    upstream = str(Path(postgres.socket_dir) / ".s.PGSQL.5432")
    state = TlsRelay(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await reader.readexactly(8) != SSL_REQUEST:
                state.refused_plain += 1
                return  # what force_ssl does to a client that did not ask for TLS
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(certificate)
            state.tls_versions.append(writer.get_extra_info("ssl_object").version())
            db_reader, db_writer = await asyncio.open_unix_connection(upstream)
            await asyncio.gather(_pump(reader, db_writer), _pump(db_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # a client that went away
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            sink.close()


async def test_plain_connections_are_refused(relay: TlsRelay) -> None:
    """It: refuses what RDS with force_ssl refuses, so the test below proves TLS."""
    with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        await asyncpg.connect(**relay.params("disable").connect_kwargs(), timeout=5)
    assert relay.refused_plain == 1


async def test_app_and_migrations_connect_over_tls_when_required(relay: TlsRelay) -> None:
    await migrate.migrate(relay.params())
    migrated = len(relay.tls_versions)
    assert migrated >= 1, "migrations connected through TLS"
    settings = settings_for(relay.params(), db_sslmode="require")
    async with serve_in_process(settings) as client:
        assert (await client.get("/health/ready")).status_code == 200
        created = await client.post("/books", json={"name": "Encrypted", "author": "TLS"})
        assert created.status_code == 201, created.text
    assert len(relay.tls_versions) > migrated, "the app's pool connected through TLS"
    assert relay.refused_plain == 0
    assert set(relay.tls_versions) <= {"TLSv1.2", "TLSv1.3"}
