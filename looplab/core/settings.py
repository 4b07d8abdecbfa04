"""One place for configuration: environment variables prefixed ``LOOPLAB_``.

``LOOPLAB_HOME`` names the workspace folder (default ``./.looplab``); the store, model artifacts and
logs live in it. ``LOOPLAB_DATABASE_URL`` overrides the store (PostgreSQL for teams); ``postgres://``
and ``postgresql://`` URLs are given the psycopg 3 driver.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings: build one with ``Settings()`` at the edge (CLI, app) and pass it on."""

    model_config = SettingsConfigDict(env_prefix="LOOPLAB_", extra="ignore")

    home: Path = Field(default=Path(".looplab"), description="Workspace folder.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the store.")
    host: str = "127.0.0.1"
    port: int = 8000
    lease_seconds: int = Field(
        default=300, ge=5, description="How long a handed-out record is held."
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    run_worker: bool = Field(default=True, description="Run the job worker inside `looplab serve`.")
    page_size_max: int = 500
    upload_max_bytes: int = Field(
        default=1 << 30,
        ge=1,
        description="Largest file `POST .../imports` accepts, in bytes (1 GiB); larger is 413.",
    )
    job_lease_seconds: float = Field(
        default=60.0,
        ge=2,
        description="A running job whose worker has not renewed its lease for this long is "
        "taken to be dead and queued again.",
    )
    job_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a worker renews the lease of its running job."
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="A job whose lease expired this many times is given up."
    )
    job_shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a stopping server lets its running job finish before handing it "
        "back to the queue for the next worker.",
    )
    monitor_every_seconds: float = Field(
        default=60.0, gt=0, description="How often workers queue monitoring of served projects."
    )
    wal_checkpoint_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How often a worker truncates SQLite's write-ahead log (0: never).",
    )
    max_field_chars: int = Field(
        default=1_000_000,
        ge=1,
        description="Longest value an import keeps, in characters; longer ones are refused.",
    )
    webhook_secret: str | None = Field(default=None, description="HMAC key for alert webhooks.")
    token_cache_seconds: float = Field(
        default=5.0, ge=0, description="A revoked token stops working within this time."
    )
    model_check_seconds: float = Field(
        default=1.0, gt=0, description="How often servers check which model is in production."
    )
    prediction_flush_seconds: float = Field(
        default=0.2, gt=0, description="Most prediction log a hard crash can lose, in seconds."
    )
    predict_batch_window_ms: float = Field(
        default=1.0,
        ge=0,
        description="How long concurrent predict calls wait to share one model call.",
    )

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL, with the workspace SQLite file as the default."""
        if self.database_url:
            return normalise_url(self.database_url)
        return f"sqlite:///{(self.home / 'looplab.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"


def normalise_url(url: str) -> str:
    """Give bare PostgreSQL URLs the psycopg 3 driver (SQLAlchemy would otherwise pick psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
