"""The app factory. Everything stateful (pool, settings) is made in `create_app`/lifespan,
never at import, so tests and workers each build their own."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bookshelf import bulk, columns, db, errors, routes
from bookshelf.config import Settings, get_settings
from bookshelf.logs import configure_logging
from bookshelf.middleware import RequestContext

log = logging.getLogger("bookshelf")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = await db.open_database(settings)
        # Everything made during start-up lives as long as the process: move it out of the
        # collector's reach, so a full collection walks only what requests made.
        gc.freeze()
        try:
            yield
        finally:
            await app.state.db.close()

    app = FastAPI(
        title="Bookshelf",
        version="0.1.0",
        summary="A books REST service on PostgreSQL.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.head_revision = columns.SCHEMA_REVISION
    app.include_router(bulk.imports)  # before /books/{book_id}, so "import" is no id
    app.include_router(routes.books)
    app.include_router(routes.health)
    errors.install_handlers(app)
    errors.document_problems(app)
    app.add_middleware(
        RequestContext,
        max_body_bytes=settings.bookshelf_max_body_bytes,
        body_timeout=settings.bookshelf_body_timeout,
    )
    if not settings.api_keys():
        log.warning("BOOKSHELF_API_KEYS is not set: POST, PATCH and DELETE are open to anyone")
    return app


def app_from_env() -> FastAPI:
    """Entry point for the server's workers (`uvicorn --factory`): settings from env."""
    settings = get_settings()
    # Workers are spawned, not forked: they inherit no logging set-up from `bookshelf serve`.
    configure_logging(settings.bookshelf_log_level)
    return create_app(settings)
