"""Settings: every way to name the database, awkward passwords, and errors that name the key."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bookshelf import columns as models
from bookshelf import migrate
from bookshelf.config import DbParams, Settings, SettingsError, get_settings
from bookshelf.models import Base
from tests.conftest import Postgres, serve_in_process, settings_for

# Every printable ASCII character that tends to break DSNs, shells or JSON.
AWKWARD_PASSWORD = "p@ss/w:rd%41#?&=\"' \\{}[]~`!$^*()+|<>,;"
ROLE = "awkward_user"


@pytest.fixture(scope="module")
def awkward_role(postgres: Postgres, db_params: DbParams) -> Iterator[DbParams]:
    """A role that must log in with AWKWARD_PASSWORD (scram), not by local trust."""
    literal = AWKWARD_PASSWORD.replace("'", "''")
    postgres.psql(
        f"CREATE ROLE {ROLE} LOGIN PASSWORD '{literal}';"
        f"GRANT ALL ON DATABASE {db_params.database} TO {ROLE};"
    )
    hba = postgres.pgdata / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"local all {ROLE} scram-sha-256\n{original}")
    postgres.reload()
    yield DbParams(db_params.host, db_params.port, "awkward_db", ROLE, AWKWARD_PASSWORD, "disable")
    hba.write_text(original)
    postgres.reload()


def test_settings_read_the_database_from_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "DB_HOST": "db.internal",
        "DB_PORT": "6543",
        "DB_NAME": "books",
        "DB_USER": "app",
        "DB_PASSWORD": AWKWARD_PASSWORD,
        "DB_SSLMODE": "require",
    }.items():
        monkeypatch.setenv(key, value)
    assert get_settings().db_params() == DbParams(
        "db.internal", 6543, "books", "app", AWKWARD_PASSWORD, "require"
    )


def test_settings_read_an_rds_secret_and_let_parts_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = {
        "engine": "postgres",
        "host": "x.rds.amazonaws.com",
        "port": 5432,
        "dbname": "bookshelf",
        "username": "postgres",
        "password": AWKWARD_PASSWORD,
        "dbInstanceIdentifier": "db-1",
    }
    monkeypatch.setenv("DB_SECRET", json.dumps(secret))
    monkeypatch.setenv("DB_HOST", "proxy.internal")
    params = get_settings().db_params()
    assert params == DbParams(
        "proxy.internal", 5432, "bookshelf", "postgres", AWKWARD_PASSWORD, "disable"
    )


def test_settings_read_a_percent_encoded_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql://app:{quote(AWKWARD_PASSWORD, safe='')}@db:5433/books?sslmode=require"
    monkeypatch.setenv("DATABASE_URL", url)
    assert get_settings().db_params() == DbParams(
        "db", 5433, "books", "app", AWKWARD_PASSWORD, "require"
    )


def test_settings_read_a_unix_socket_url() -> None:
    settings = Settings(database_url="postgresql://postgres@/books?host=/tmp/sock")
    assert settings.db_params().host == "/tmp/sock"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DB_SECRET": "{not json"}, "DB_SECRET"),
        ({"DB_SECRET": "[1, 2]"}, "DB_SECRET"),
        ({"DB_HOST": "db"}, "DB_NAME, DB_USER"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
        ({"DATABASE_URL": "::not a url::"}, "DATABASE_URL"),
        ({"DB_PORT": "99999"}, "DB_PORT"),
        ({"DB_SSLMODE": "sometimes"}, "DB_SSLMODE"),
        ({"BOOKSHELF_API_KEYS": "changeme"}, "BOOKSHELF_API_KEYS"),
        ({"BOOKSHELF_MIGRATE_ON_START": "maybe"}, "BOOKSHELF_MIGRATE_ON_START"),
    ],
)
def test_get_settings_names_the_setting_at_fault(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=named):
        get_settings()


def test_settings_errors_never_show_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_SECRET", '{"password": "hunter2-secret", ')
    with pytest.raises(SettingsError) as caught:
        get_settings()
    assert "hunter2" not in str(caught.value)
    monkeypatch.setenv(
        "DB_SECRET", '{"host": "db", "dbname": "b", "username": "u", "password": "hunter2-secret"}'
    )
    assert "hunter2" not in repr(Settings())


def test_api_keys_are_split_on_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKSHELF_API_KEYS", " first-key-0123456789 ,second-key-0123456789,")
    assert get_settings().api_keys() == (b"first-key-0123456789", b"second-key-0123456789")


async def test_awkward_password_works_for_migrations_and_the_app(
    postgres: Postgres, awkward_role: DbParams
) -> None:
    postgres.psql(f"DROP DATABASE IF EXISTS awkward_db; CREATE DATABASE awkward_db OWNER {ROLE};")
    wrong = DbParams(**{**awkward_role.__dict__, "password": "wrong"})
    with pytest.raises(asyncpg.InvalidPasswordError):
        await migrate.migrate(wrong)  # the server really checks the password

    await migrate.migrate(awkward_role)
    secret = json.dumps(
        {
            "host": awkward_role.host,
            "port": awkward_role.port,
            "dbname": awkward_role.database,
            "username": ROLE,
            "password": AWKWARD_PASSWORD,
        }
    )
    async with serve_in_process(Settings(db_secret=secret)) as client:
        created = await client.post("/books", json={"name": "Secret", "author": "Keeper"})
        ready = await client.get("/health/ready")
    assert (created.status_code, ready.status_code) == (201, 200)


async def test_migrations_run_concurrently_apply_once(postgres: Postgres) -> None:
    postgres.psql("DROP DATABASE IF EXISTS race_db; CREATE DATABASE race_db;")
    params = postgres.admin("race_db")
    script = (
        "import asyncio, sys; from bookshelf import migrate; from bookshelf.config import DbParams;"
        f"asyncio.run(migrate.migrate(DbParams(*{tuple(params.__dict__.values())!r})))"
    )
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script) for _ in range(4)
    ]
    assert [await p.wait() for p in processes] == [0, 0, 0, 0]
    conn = await asyncpg.connect(**params.connect_kwargs())
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == "0001"
        assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
    finally:
        await conn.close()


async def test_database_limits_equal_api_limits(db_params: DbParams) -> None:
    """The table refuses exactly what the API refuses: one past each limit."""
    conn = await asyncpg.connect(**db_params.connect_kwargs())
    insert = "INSERT INTO book (name, author, published_year, pages) VALUES ($1, $2, $3, $4)"
    try:
        await conn.execute(
            insert,
            "n" * models.NAME_MAX_LENGTH,
            "a" * models.AUTHOR_MAX_LENGTH,
            models.YEAR_MIN,
            models.PAGES_MAX,
        )
        for bad in (
            ("n" * (models.NAME_MAX_LENGTH + 1), "a", None, None),
            ("n", "a" * (models.AUTHOR_MAX_LENGTH + 1), None, None),
            ("n", "a", models.YEAR_MAX + 1, None),
            ("n", "a", None, models.PAGES_MIN - 1),
            ("", "a", None, None),
        ):
            with pytest.raises(
                (asyncpg.CheckViolationError, asyncpg.StringDataRightTruncationError)
            ):
                await conn.execute(insert, *bad)
    finally:
        await conn.close()


async def test_ready_is_503_when_the_schema_is_behind(postgres: Postgres) -> None:
    postgres.psql("DROP DATABASE IF EXISTS empty_db; CREATE DATABASE empty_db;")
    settings = settings_for(postgres.admin("empty_db"))
    async with serve_in_process(settings) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert "expected 0001" in response.json()["detail"]


def test_schema_revision_is_the_head_of_the_migration_history() -> None:
    assert migrate.head_revision() == models.SCHEMA_REVISION


@pytest.mark.parametrize(
    ("command", "env", "code", "says"),
    [
        (
            "migrate",
            {"DATABASE_URL": "postgresql://u:s3cr3t-pw@127.0.0.1:1/db"},
            1,
            "cannot use the database",
        ),
        ("migrate", {}, 2, "no database configured: set DATABASE_URL, DB_SECRET, or DB_HOST"),
        # Before uvicorn starts: a worker that fails its own check leaves it exiting 0.
        ("serve", {}, 2, "no database configured"),
        (
            "serve",
            {"DB_SECRET": '{"host": "h", "port": "abc", "username": "u", "dbname": "d"}'},
            2,
            "(or DB_SECRET's port) must be an integer",
        ),
    ],
    ids=["migrate-unreachable", "migrate-unconfigured", "serve-unconfigured", "serve-bad-port"],
)
def test_commands_explain_a_database_they_cannot_use_in_one_line(
    command: str, env: dict[str, str], code: int, says: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_URL"))}
    done = subprocess.run(
        [sys.executable, "-m", "bookshelf.cli", command],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code
    (line,) = done.stderr.strip().splitlines()
    assert says in line and "s3cr3t" not in line


async def test_migrations_build_exactly_the_schema_the_models_declare(db_params: DbParams) -> None:
    """It keeps `models` (and the limits in `columns`) and the migrations from drifting."""
    engine = create_async_engine(
        "postgresql+asyncpg://",
        async_creator=lambda: asyncpg.connect(**db_params.connect_kwargs()),
        poolclass=NullPool,
    )

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(compare) == []
    finally:
        await engine.dispose()
