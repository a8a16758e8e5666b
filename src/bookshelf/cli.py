"""The `bookshelf` command: serve, migrate, dev (embedded PostgreSQL), healthcheck and import."""

import argparse
import asyncio
import logging
import signal
import sys
import time
import urllib.request
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

import asyncpg
import uvicorn

from bookshelf import contract, importer
from bookshelf.config import DbParams, Settings, SettingsError, get_settings
from bookshelf.logs import configure_logging

log = logging.getLogger("bookshelf")

MIGRATE_RETRY_SECONDS = 60


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"bookshelf: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.bookshelf_log_level)
    try:
        result: int = args.run(settings, args)
    except SettingsError as exc:
        print(f"bookshelf: {exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Migrations could not reach or log in to the database: one line, not a traceback.
        # Neither kind of message holds the password.
        print(f"bookshelf: cannot use the database: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bookshelf", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API (the container's command)")
    serve.add_argument("--host", help="default: BOOKSHELF_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: BOOKSHELF_PORT or 8000")
    serve.add_argument("--workers", type=int, help="default: BOOKSHELF_WORKERS or one per CPU")
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    dev = commands.add_parser(
        "dev",
        help="migrate and serve on 127.0.0.1:8000, with an embedded PostgreSQL if no "
        "database is configured",
    )
    dev.add_argument("--port", type=int, help="default: BOOKSHELF_PORT or 8000")
    dev.set_defaults(run=_dev)

    check = commands.add_parser("healthcheck", help="exit 0 if the local server is live")
    check.add_argument("--url", help="default: http://127.0.0.1:$BOOKSHELF_PORT/health/live")
    check.set_defaults(run=_healthcheck)

    load = commands.add_parser(
        "import",
        help="import a Goodreads export, CSV or JSON Lines file into a running service",
        description=importer.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importer.add_arguments(load)
    load.set_defaults(run=_import)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    # Checked here, once: a worker that fails its own check leaves uvicorn exiting 0.
    params = settings.db_params()
    if settings.bookshelf_migrate_on_start:
        _migrate_with_retry(params)
    _run_server(
        settings,
        host=args.host or settings.bookshelf_host,
        port=args.port or settings.bookshelf_port,
        workers=args.workers or settings.workers,
    )
    return 0


def _run_server(settings: Settings, *, host: str, port: int, workers: int) -> None:
    # While serving, uvicorn handles SIGTERM itself (drain, then stop). Afterwards it raises
    # the signal again, which would end the process by SIGTERM (exit 143) after a clean stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "bookshelf.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips=settings.bookshelf_forwarded_allow_ips,
        timeout_keep_alive=contract.KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=contract.DRAIN_SECONDS,
        access_log=False,  # RequestContext writes one JSON line per request instead
        log_config=None,  # keep our JSON logging
        server_header=False,
    )


def _exit_cleanly(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM outside uvicorn's own handling: after its drain, or before it started."""
    raise SystemExit(0)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    _apply_migrations(settings.db_params())
    return 0


def _apply_migrations(params: DbParams) -> None:
    # Imported here: Alembic and SQLAlchemy are slow to import, and workers never need them.
    from bookshelf import migrate

    asyncio.run(migrate.migrate(params))
    log.info("database migrated", extra={"revision": migrate.head_revision()})


def _migrate_with_retry(params: DbParams) -> None:
    # A task may start before its database accepts connections; wait, but not forever.
    deadline = time.monotonic() + MIGRATE_RETRY_SECONDS
    while True:
        try:
            _apply_migrations(params)
            return
        except (OSError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("database not reachable yet (%s); retrying", type(exc).__name__)
            time.sleep(2)


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    """`make run`: one command from a fresh clone to a served API."""
    import os

    data = "your database"
    if not settings.database_configured:
        from bookshelf.embedded import start_embedded

        params = start_embedded(settings.bookshelf_data_dir)
        data = f"{settings.bookshelf_data_dir.resolve()} (embedded PostgreSQL)"
        # Workers build their settings from the environment; point them at the embedded server.
        os.environ.update(
            {
                contract.DB_HOST: params.host,
                contract.DB_PORT: str(params.port),
                contract.DB_NAME: params.database,
                contract.DB_USER: params.user,
            }
        )
        settings = get_settings()
    _apply_migrations(settings.db_params())
    port = args.port or settings.bookshelf_port
    base = f"http://127.0.0.1:{port}"
    print(f"\n  API:   {base}/books\n  Docs:  {base}/docs\n  Data:  {data}\n", flush=True)
    _run_server(settings, host="127.0.0.1", port=port, workers=1)
    return 0


def _healthcheck(settings: Settings, args: argparse.Namespace) -> int:
    # Used by the image's HEALTHCHECK: the slim image has no curl.
    url = args.url or f"http://127.0.0.1:{settings.bookshelf_port}{contract.LIVE_PATH}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


def _import(settings: Settings, args: argparse.Namespace) -> int:
    # The local service by default, on the port `make run` was given.
    args.url = args.url or f"http://127.0.0.1:{settings.bookshelf_port}"
    return importer.run(args)


if __name__ == "__main__":
    sys.exit(main())
