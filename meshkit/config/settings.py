"""Backend configuration from ``PORTICO_`` environment variables (pydantic-settings).

Each backend subclasses :class:`BackendSettings` with its own prefix (``PORTICO_USERS_`` …) for where it
listens; the shared services (Kafka, Redis, database) keep one name for the whole mesh.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from observability.settings import TelemetrySettings

_REPO_ROOT = Path(__file__).resolve().parents[2]


def run_dir() -> Path:
    """Where local state lives when no URL says otherwise (``PORTICO_RUN_DIR``, default ``.run/``)."""
    return Path(os.environ.get("PORTICO_RUN_DIR", str(_REPO_ROOT / ".run")))


class TokenSettings(BaseSettings):
    """How access tokens are checked; the same for the gateway and every backend (``PORTICO_*``)."""

    model_config = SettingsConfigDict(env_prefix="PORTICO_", extra="ignore", populate_by_name=True)

    jwt_issuer: str = Field(default="portico-auth", validation_alias=AliasChoices("PORTICO_JWT_ISSUER"))
    jwt_audience: str = Field(default="portico", validation_alias=AliasChoices("PORTICO_JWT_AUDIENCE"))
    jwt_leeway: float = Field(
        default=30.0,
        validation_alias=AliasChoices("PORTICO_JWT_LEEWAY"),
        description="Clock skew allowed (s)",
    )
    jwks_cache_seconds: float = Field(
        default=300.0, validation_alias=AliasChoices("PORTICO_JWKS_CACHE_SECONDS")
    )
    jwks_refetch_cooldown: float = Field(
        default=10.0,
        validation_alias=AliasChoices("PORTICO_JWKS_REFETCH_COOLDOWN"),
        description="Minimum seconds between JWKS fetches triggered by an unknown kid",
    )
    revocation_fail_open: bool = Field(
        default=True,
        validation_alias=AliasChoices("PORTICO_REVOCATION_FAIL_OPEN"),
        description="Accept tokens when Redis cannot be asked about revocations (counted in a metric)",
    )


class BackendSettings(TokenSettings):
    """Where a backend listens and what it depends on. Subclasses set the prefix and default ports."""

    model_config = SettingsConfigDict(env_prefix="PORTICO_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", description="gRPC listen address")
    port: int = Field(description="gRPC listen port")
    metrics_port: int = Field(description="Prometheus /metrics port")

    # Shared by the whole mesh: read from PORTICO_<NAME> whatever the subclass's own prefix is.
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", validation_alias=AliasChoices("PORTICO_KAFKA_BOOTSTRAP")
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("PORTICO_REDIS_URL")
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PORTICO_DATABASE_URL"),
        description="SQLAlchemy async URL; SQLite under the run directory when unset",
    )

    auth_target: str = Field(
        default="127.0.0.1:50052",
        validation_alias=AliasChoices("PORTICO_AUTH_TARGET"),
        description="gRPC target of the auth backend, whose GetJwks publishes the token keys",
    )
    jwks_target: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PORTICO_JWKS_TARGET"),
        description="gRPC target serving GetJwks when it is not the auth backend itself",
    )
    shutdown_grace: float = Field(
        default=8.0,
        validation_alias=AliasChoices("PORTICO_SHUTDOWN_GRACE"),
        description="Seconds in-flight calls may finish after SIGTERM",
    )
    health_interval: float = Field(
        default=2.0,
        validation_alias=AliasChoices("PORTICO_HEALTH_INTERVAL"),
        description="Seconds between dependency checks",
    )
    outbox_retention_hours: float = Field(
        default=168.0,
        gt=0,
        validation_alias=AliasChoices("PORTICO_OUTBOX_RETENTION_HOURS"),
        description="Hours a published outbox row is kept (pending rows are kept until published)",
    )
    processed_events_retention_hours: float = Field(
        default=336.0,
        gt=0,
        validation_alias=AliasChoices("PORTICO_PROCESSED_EVENTS_RETENTION_HOURS"),
        description="Hours an applied event id is remembered; keep it above the topics' retention",
    )
    consumer_lag_interval: float = Field(
        default=10.0,
        gt=0,
        validation_alias=AliasChoices("PORTICO_CONSUMER_LAG_INTERVAL"),
        description="Seconds between refreshes of the event consumers' Kafka lag gauge",
    )
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate: serve TLS when set")
    tls_key_file: Path | None = Field(default=None, description="PEM private key for the certificate")
    tls_client_ca_file: Path | None = Field(
        default=None, description="CA bundle: require client certs (mTLS)"
    )

    @property
    def address(self) -> str:
        """``host:port`` for ``add_*_port``."""
        return f"{self.host}:{self.port}"

    def telemetry(self) -> TelemetrySettings:
        """Telemetry settings are shared by every process, so they keep the plain ``PORTICO_`` prefix."""
        return TelemetrySettings()
