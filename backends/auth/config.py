"""Settings of the auth backend (``PORTICO_AUTH_*``, plus the mesh-wide ``PORTICO_*`` it reads)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from meshkit.config.base import env, settings_config
from meshkit.config.events import UserEventsSettings
from meshkit.config.peers import UsersPeer
from meshkit.config.serve import ConsumingBackendSettings, ports
from meshkit.config.stores import run_dir

PORT, METRICS_PORT = ports("auth")


def _default_keys_dir() -> Path:
    """``auth-keys`` in the run directory."""
    return run_dir() / "auth-keys"


class AuthSettings(ConsumingBackendSettings, UsersPeer, UserEventsSettings):
    """Tokens, refresh sessions, login throttling, password hashing and the signing keys."""

    model_config = settings_config("auth")

    port: int = Field(default=PORT, description="gRPC listen port")
    metrics_port: int = Field(default=METRICS_PORT, description="Prometheus /metrics port")

    consumer_group: str = Field(
        default="portico-auth",
        min_length=1,
        description="Kafka consumer group of the auth backend's user-event consumer (one per deployment)",
    )
    access_token_ttl: int = env(
        "PORTICO_AUTH_ACCESS_TOKEN_TTL",
        "PORTICO_ACCESS_TOKEN_TTL",
        default=600,
        ge=30,
        le=86400,
        description="Lifetime of an access token in seconds",
    )
    expiry_time: int | None = env(
        "PORTICO_AUTH_EXPIRY_TIME",
        "EXPIRY_TIME",
        default=None,
        ge=1,
        le=1440,
        description=(
            "Lifetime of an access token in minutes, the older spelling of the seconds setting; "
            "used when `PORTICO_AUTH_ACCESS_TOKEN_TTL` is not set"
        ),
    )
    refresh_idle_seconds: int = Field(
        default=7 * 86400, ge=60, description="Seconds after which an unused refresh token dies"
    )
    refresh_absolute_seconds: int = Field(
        default=30 * 86400,
        ge=60,
        description="Seconds after which a login's refresh tokens die however often they are used",
    )
    refresh_reuse_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="Seconds in which a retried refresh of the live token's parent is refused, not revoked",
    )
    admin_password: SecretStr | None = env(
        "PORTICO_AUTH_ADMIN_PASSWORD",
        "PORTICO_ADMIN_PASSWORD",
        default=None,
        description="When set, ensure user 'admin' (role admin, tenant default) with this password",
    )
    keys_dir: Path = Field(
        default_factory=_default_keys_dir,
        description="Directory of the token-signing keys (created 0700, files 0600)",
    )
    keys_passphrase: SecretStr | None = Field(
        default=None, description="Passphrase that encrypts the signing keys at rest (plain files when unset)"
    )
    login_account_limit: int = Field(
        default=5, ge=1, description="Failed logins of one account in the window before it is locked out"
    )
    login_ip_limit: int = Field(
        default=50,
        ge=1,
        description="Failed logins from one client IP (IPv6: per /64) in the window before it is refused",
    )
    login_window_seconds: int = Field(
        default=900, ge=1, description="Seconds of the sliding window in which failed logins are counted"
    )
    login_lockout_seconds: int = Field(
        default=30, ge=1, description="Seconds of the first lockout; doubles with each further failure"
    )
    argon2_memory_kib: int = Field(
        default=19456, ge=8, le=1048576, description="argon2id memory cost in KiB (OWASP: 19 MiB)"
    )
    argon2_time_cost: int = Field(
        default=2, ge=1, le=20, description="argon2id time cost, in passes (OWASP: 2)"
    )
    argon2_parallelism: int = Field(
        default=1, ge=1, le=16, description="argon2id parallelism, in lanes (OWASP: 1)"
    )
    hash_workers: int = Field(default=0, ge=0, description="Threads that hash passwords; 0 for one per CPU")

    @model_validator(mode="after")
    def _expiry_time_in_minutes(self) -> AuthSettings:
        # The seconds setting, when given, wins: it is the one Portico documents.
        if self.expiry_time is not None and "access_token_ttl" not in self.model_fields_set:
            self.access_token_ttl = self.expiry_time * 60
        return self
