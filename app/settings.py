"""All configuration, in one place.

Environment variables use the ``HEADWATER_`` prefix. Where a Marquez docker-compose user already has a
variable (``MARQUEZ_PORT``, ``POSTGRES_HOST`` …) it is honoured too, so an existing setup carries over.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

DEFAULT_SQLITE_URL = "sqlite:///headwater.db"


class Settings(BaseSettings):
    # An empty variable (compose's `${X:-}`) means unset.
    model_config = SettingsConfigDict(
        env_prefix="HEADWATER_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    host: str = "0.0.0.0"
    port: int = Field(5000, validation_alias=AliasChoices("HEADWATER_PORT", "MARQUEZ_PORT", "port"))
    # /ping, /healthcheck and /metrics on their own port, as Marquez's admin port (0: off).
    admin_port: int = Field(
        5001, validation_alias=AliasChoices("HEADWATER_ADMIN_PORT", "MARQUEZ_ADMIN_PORT", "admin_port")
    )
    workers: int = 1

    # The database. Empty means: Postgres if Marquez's POSTGRES_HOST is set, else the embedded SQLite file.
    database_url: str = ""
    postgres_host: str | None = Field(None, validation_alias=AliasChoices("POSTGRES_HOST", "postgres_host"))
    postgres_port: int = Field(5432, validation_alias=AliasChoices("POSTGRES_PORT", "postgres_port"))
    postgres_db: str = Field("marquez", validation_alias=AliasChoices("POSTGRES_DB", "postgres_db"))
    postgres_user: str = Field("marquez", validation_alias=AliasChoices("POSTGRES_USER", "postgres_user"))
    postgres_password: str = Field("marquez", validation_alias=AliasChoices("POSTGRES_PASSWORD", "postgres_password"))
    db_pool_size: int = 10
    db_max_overflow: int = 10

    migrate_on_start: bool = True
    # How long `headwater serve` waits for the database to answer before giving up (compose starts both at once).
    db_wait_seconds: float = 30
    # Largest accepted request body (after gzip inflation), in bytes.
    max_body_bytes: int = 16 * 1024 * 1024
    # How often a transaction that hit a deadlock / serialization failure / busy SQLite is retried.
    ingest_retries: int = 8
    log_level: str = "info"
    log_format: str = Field("text", pattern="^(text|json)$")  # json: one JSON object per line
    # Comma-separated API keys; when set, writes need `Authorization: Bearer <one of them>`. Never logged.
    # `key` may read and write; `key:write` may only write (a pipeline's key, useless to read metadata with).
    api_keys: str = Field("", repr=False)
    # With keys set: reads need a read+write key too.
    protect_reads: bool = False
    # Periodic retention inside `headwater serve` (off when unset): what is older than this many days is purged
    # every `retention_interval_seconds`, `retention_batch_size` rows per transaction (Marquez: 7 days, 15 min, 1000).
    retention_days: float | None = Field(None, gt=0)
    retention_interval_seconds: float = Field(900, gt=0)
    retention_batch_size: int = Field(1000, gt=0)

    @property
    def api_key_list(self) -> list[str]:
        return [key for key, _ in self.api_key_roles]

    @property
    def api_key_roles(self) -> list[tuple[str, str]]:
        """(key, "readwrite" | "write") for each configured key."""
        roles = []
        for entry in (e.strip() for e in self.api_keys.split(",")):
            if not entry:
                continue
            key, _, role = entry.rpartition(":") if entry.endswith(":write") else (entry, "", "readwrite")
            roles.append((key, role))
        return roles

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        # Users paste libpq-style URLs; SQLAlchemy needs the driver spelled out.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @cached_property
    def sqlalchemy_url(self) -> URL:
        if self.database_url:
            return make_url(self.database_url)
        if self.postgres_host:
            return URL.create(
                "postgresql+psycopg",
                username=self.postgres_user,
                password=self.postgres_password,
                host=self.postgres_host,
                port=self.postgres_port,
                database=self.postgres_db,
            )
        return make_url(DEFAULT_SQLITE_URL)

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.get_backend_name() == "sqlite"

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite or not self.sqlalchemy_url.database:
            return None
        return Path(self.sqlalchemy_url.database)
