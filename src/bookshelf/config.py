"""Typed settings, read from the environment once at start and passed in from there.

Field names equal the environment variable names (see `bookshelf.contract`). The database is
given by `DATABASE_URL`, by the `DB_*` parts, or by `DB_SECRET` (the JSON of an RDS-generated
Secrets Manager secret); explicit parts override the secret's fields. Connection parameters are
kept as parts all the way to the driver, so a password may hold any printable character.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# Keys shorter than this are refused: they are placeholders or guessable.
MIN_API_KEY_LENGTH = 16


class SettingsError(Exception):
    """The configuration is unusable; the message names the setting at fault."""


@dataclass(frozen=True)
class DbParams:
    """Everything needed to open a connection, as separate parts (never a DSN string)."""

    host: str
    port: int
    database: str
    user: str
    password: str | None
    sslmode: SslMode

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect` / `asyncpg.create_pool`."""
        return {
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "user": self.user,
            "password": self.password,
            "ssl": self.sslmode,
        }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    database_url: SecretStr | None = None
    db_host: str | None = None
    db_port: int | None = Field(default=None, ge=1, le=65535)
    db_name: str | None = None
    db_user: str | None = None
    db_password: SecretStr | None = None
    db_secret: SecretStr | None = None
    db_sslmode: SslMode = "disable"
    # Connections per worker process; fixed size so a burst never opens new connections.
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Bounds that make requests fail fast (503) when the database is away.
    db_connect_timeout: float = Field(default=2.0, gt=0, le=60)
    db_acquire_timeout: float = Field(default=2.0, gt=0, le=60)
    db_statement_timeout: float = Field(default=3.0, gt=0, le=600)

    bookshelf_api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    bookshelf_migrate_on_start: bool = False
    bookshelf_host: str = "127.0.0.1"
    bookshelf_port: int = Field(default=8000, ge=1, le=65535)
    bookshelf_workers: int | None = Field(default=None, ge=1, le=64)
    bookshelf_forwarded_allow_ips: str = "127.0.0.1"
    bookshelf_log_level: Literal["debug", "info", "warning", "error"] = "info"
    bookshelf_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A client that stops sending its body mid-way gets 408 instead of holding the request.
    bookshelf_body_timeout: float = Field(default=30.0, gt=0, le=600)
    bookshelf_data_dir: Path = Path(".data")

    @field_validator("bookshelf_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("bookshelf_api_keys")
    @classmethod
    def _refuse_weak_keys(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(len(key.get_secret_value()) < MIN_API_KEY_LENGTH for key in keys):
            raise ValueError(f"every key must have at least {MIN_API_KEY_LENGTH} characters")
        return keys

    @model_validator(mode="after")
    def _check_database(self) -> Self:
        # Resolve once here so a bad DB_SECRET or DATABASE_URL fails at start, naming the key.
        if self.database_configured:
            self.db_params()
        return self

    @property
    def database_configured(self) -> bool:
        return any((self.database_url, self.db_host, self.db_secret))

    @property
    def workers(self) -> int:
        return self.bookshelf_workers or len(os.sched_getaffinity(0))

    def api_keys(self) -> tuple[bytes, ...]:
        return tuple(key.get_secret_value().encode() for key in self.bookshelf_api_keys)

    def db_params(self) -> DbParams:
        """The connection parameters, or a `SettingsError` naming what is missing."""
        if self.database_url is not None:
            return _params_from_url(self.database_url.get_secret_value(), self.db_sslmode)
        parts = _secret_fields(self.db_secret)
        overrides = {
            "host": self.db_host,
            "port": self.db_port,
            "dbname": self.db_name,
            "username": self.db_user,
            "password": self.db_password.get_secret_value() if self.db_password else None,
        }
        parts.update({key: value for key, value in overrides.items() if value is not None})
        missing = [env for env, key in _REQUIRED_PARTS.items() if not parts.get(key)]
        if len(missing) == len(_REQUIRED_PARTS) and self.db_secret is None:
            raise SettingsError(
                "no database configured: set DATABASE_URL, DB_SECRET, or DB_HOST, DB_NAME and "
                "DB_USER (only `bookshelf dev`, which `make run` uses, starts an embedded one)"
            )
        if missing:
            raise SettingsError(f"database settings incomplete: set {', '.join(missing)}")
        try:
            port = int(parts.get("port") or 5432)
        except (TypeError, ValueError):
            raise SettingsError("DB_PORT (or DB_SECRET's port) must be an integer") from None
        return DbParams(
            host=str(parts["host"]),
            port=port,
            database=str(parts["dbname"]),
            user=str(parts["username"]),
            password=None if parts.get("password") is None else str(parts["password"]),
            sslmode=self.db_sslmode,
        )


_REQUIRED_PARTS = {"DB_HOST": "host", "DB_NAME": "dbname", "DB_USER": "username"}


def _secret_fields(secret: SecretStr | None) -> dict[str, Any]:
    if secret is None:
        return {}
    try:
        fields = json.loads(secret.get_secret_value())
    except ValueError:
        # Never echo the value: it holds the password.
        raise SettingsError("DB_SECRET is not valid JSON") from None
    if not isinstance(fields, dict):
        raise SettingsError("DB_SECRET must be a JSON object")
    return fields


def _params_from_url(url: str, sslmode: SslMode) -> DbParams:
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgres", "postgresql"):
        raise SettingsError("DATABASE_URL must be a postgresql:// URL")
    # libpq style: ?host=/path/to/socket for Unix sockets, ?sslmode=require for TLS.
    query = dict(parse_qsl(parts.query))
    try:
        port = parts.port or 5432
    except ValueError:
        raise SettingsError("DATABASE_URL has an invalid port") from None
    url_sslmode = query.get("sslmode", sslmode)
    if url_sslmode not in get_args(SslMode):
        raise SettingsError(f"DATABASE_URL has an unknown sslmode {url_sslmode!r}")
    return DbParams(
        host=query.get("host") or parts.hostname or "localhost",
        port=port,
        database=unquote(parts.path.lstrip("/")) or "postgres",
        user=unquote(parts.username or "postgres"),
        password=None if parts.password is None else unquote(parts.password),
        sslmode=url_sslmode,  # type: ignore[arg-type]  # checked just above
    )


def get_settings(**overrides: Any) -> Settings:
    """Read and check the settings; a `SettingsError` message names the offending variables."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']).upper() or 'settings'}: {error['msg']}"
            for error in exc.errors(include_input=False)
        )
        raise SettingsError(f"invalid settings: {problems}") from None
