"""Alembic environment. `bookshelf migrate` hands in a connection that already holds the
migration lock; the plain `alembic` command (for writing revisions) connects from settings."""

import asyncio

from alembic import context
from sqlalchemy import Connection

from bookshelf.models import Base

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_standalone() -> None:
    from bookshelf.config import get_settings
    from bookshelf.migrate import migrate

    asyncio.run(migrate(get_settings().db_params()))


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    run_standalone()
