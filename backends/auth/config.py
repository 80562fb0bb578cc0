"""Settings of the auth backend (``PORTICO_AUTH_*``, plus the shared ``PORTICO_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from meshkit.config.settings import BackendSettings, run_dir


def _default_keys_dir() -> Path:
    return run_dir() / "auth-keys"


class AuthSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_AUTH_", extra="ignore", populate_by_name=True)

    port: int = 50052
    metrics_port: int = 9102

    users_target: str = Field(
        default="127.0.0.1:50051",
        validation_alias=AliasChoices("PORTICO_USERS_TARGET"),
        description="users backend",
    )
    consumer_group: str = Field(
        default="portico-auth",
        min_length=1,
        description="Kafka consumer group of the auth backend's user-event consumer (one per deployment)",
    )
    access_token_ttl: int = Field(
        default=600,
        ge=30,
        le=86400,
        validation_alias=AliasChoices("PORTICO_ACCESS_TOKEN_TTL"),
        description="Access-token lifetime in seconds (seed 001's EXPIRY_TIME)",
    )
    refresh_idle_seconds: int = Field(
        default=7 * 86400, ge=60, description="A refresh token unused this long dies"
    )
    refresh_absolute_seconds: int = Field(
        default=30 * 86400, ge=60, description="No login lasts longer than this"
    )
    refresh_reuse_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="A concurrent refresh of the immediate parent is refused, not punished",
    )
    admin_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PORTICO_ADMIN_PASSWORD"),
        description="When set, ensure user 'admin' (role admin, tenant default) with this password",
    )
    keys_dir: Path = Field(
        default_factory=_default_keys_dir, description="Signing keys (0700 dir, 0600 files)"
    )
    keys_passphrase: SecretStr | None = Field(default=None, description="Encrypts the signing keys at rest")
    login_account_limit: int = Field(default=5, ge=1, description="Failures per account before a lockout")
    login_ip_limit: int = Field(default=50, ge=1, description="Failures per client IP in the window")
    login_window_seconds: int = Field(default=900, ge=1, description="Sliding window of counted failures")
    login_lockout_seconds: int = Field(
        default=30, ge=1, description="First lockout; doubles per further failure"
    )
    argon2_memory_kib: int = Field(
        default=19456, ge=8, le=1048576, description="argon2id memory (OWASP: 19 MiB)"
    )
    argon2_time_cost: int = Field(default=2, ge=1, le=20, description="argon2id iterations (OWASP: 2)")
    argon2_parallelism: int = Field(default=1, ge=1, le=16, description="argon2id lanes (OWASP: 1)")
    hash_workers: int = Field(default=0, ge=0, description="Password-hashing threads; 0 = CPU count")
