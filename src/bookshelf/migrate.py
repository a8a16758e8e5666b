"""Schema migrations with Alembic, serialised by a PostgreSQL advisory lock.

Several tasks starting at once all call `migrate`; the first migrates, the others wait on the
lock and then find nothing to do. Imported only by the CLI and tests: workers never load it.
"""

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bookshelf.config import DbParams

# Any constant works; it only has to be the same for every instance of the service.
MIGRATION_LOCK_ID = 0x626F6F6B  # "book"


def alembic_config(params: DbParams | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "bookshelf:migrations")
    config.attributes["db_params"] = params
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


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
    except DBAPIError as exc:
        # Callers handle the driver's errors (refused connection, bad password), so surface
        # those rather than SQLAlchemy's wrapper around them.
        original = exc.orig.__cause__ if exc.orig is not None else None
        raise (original or exc) from exc
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, params: DbParams) -> None:
    config = alembic_config(params)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
