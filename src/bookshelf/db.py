"""The connection pool, and migrations run under an advisory lock.

Requests use asyncpg directly: one prepared statement per request, no transaction around
single statements. SQLAlchemy is only used by Alembic, over the same connection parameters.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bookshelf.config import DbParams, Settings

log = logging.getLogger("bookshelf.db")

# Any constant works; it only has to be the same for every instance of the service.
MIGRATION_LOCK_ID = 0x626F6F6B  # "book"


class Database:
    """A fixed-size asyncpg pool whose every acquire is bounded in time."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
            yield conn

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(query, *args)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            return await conn.fetch(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(query, *args)

    async def close(self) -> None:
        await self.pool.close()


async def open_database(settings: Settings) -> Database:
    """Open the pool. Starting while the database is down is fine: requests get 503 until
    it is back, and the pool reconnects by itself."""
    pool = await asyncpg.create_pool(
        **settings.db_params().connect_kwargs(),
        # min 0 lets the pool open without the database; idle connections are never
        # closed (lifetime 0), so once warm the pool stays at its fixed size.
        min_size=0,
        max_size=settings.db_pool_size,
        max_inactive_connection_lifetime=0,
        timeout=settings.db_connect_timeout,
        command_timeout=settings.db_statement_timeout,
        server_settings={"application_name": "bookshelf", "timezone": "UTC"},
        reset=_keep_session,
    )
    database = Database(pool, settings.db_acquire_timeout)
    await _warm_up(database, settings.db_pool_size)
    return database


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (RESET ALL, UNLISTEN, ...), a second round
    trip per request: requests never change session state. Open transactions are still rolled
    back by asyncpg before this is called."""


async def _warm_up(database: Database, size: int) -> None:
    async def touch() -> None:
        async with database.connection() as conn:
            await conn.execute("SELECT 1")

    results = await asyncio.gather(*(touch() for _ in range(size)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        log.warning("database not reachable at start (%s); serving 503 until it is", failures[0])


def alembic_config(params: DbParams | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "bookshelf:migrations")
    config.attributes["db_params"] = params
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(database: Database) -> str | None:
    try:
        value = await database.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return None  # never migrated
    return None if value is None else str(value)


async def migrate(params: DbParams) -> None:
    """Upgrade to the latest revision. Concurrent callers queue on an advisory lock held for
    the migration's transaction, so the first migrates and the rest find nothing to do."""
    engine = create_async_engine(
        "postgresql+asyncpg://",
        async_creator=lambda: asyncpg.connect(**params.connect_kwargs()),
        poolclass=NullPool,
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            await conn.run_sync(_upgrade, params)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, params: DbParams) -> None:
    config = alembic_config(params)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
