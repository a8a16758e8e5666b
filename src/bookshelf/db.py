"""The connection pool that serves requests.

Requests use asyncpg directly: one prepared statement per request, no transaction around
single statements. (SQLAlchemy and Alembic only run migrations: see `migrate`.)
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bookshelf.config import Settings
from bookshelf.errors import PoolTimeout

# What `Database.connection()` yields: a pooled connection, used like a plain one.
Connection = asyncpg.Connection | PoolConnectionProxy

log = logging.getLogger("bookshelf.db")


class Database:
    """A fixed-size asyncpg pool whose every acquire is bounded in time."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        try:
            conn = await self.pool.acquire(timeout=self.acquire_timeout)
        except TimeoutError:
            raise PoolTimeout() from None
        try:
            yield conn
        finally:
            await self.pool.release(conn)

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
        server_settings={
            "application_name": "bookshelf",
            "timezone": "UTC",
            # asyncpg prepares every statement. After five runs PostgreSQL may switch a named
            # statement to a generic plan, and for `q` (LIKE $1 ... ORDER BY id LIMIT $2) that
            # plan walks the primary key and filters every row instead of using the trigram
            # index: O(catalogue) per search. Custom plans cost a few µs of planning instead.
            "plan_cache_mode": "force_custom_plan",
        },
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


async def current_revision(database: Database) -> str | None:
    try:
        value = await database.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return None  # never migrated
    return None if value is None else str(value)
