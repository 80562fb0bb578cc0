"""Gateway configuration from ``PORTICO_`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from meshkit.config.settings import TokenSettings


def _target(name: str, port: int) -> str:
    return Field(
        default=f"127.0.0.1:{port}",
        validation_alias=AliasChoices(f"PORTICO_{name.upper()}_TARGET"),
        description=f"gRPC target of the {name} backend (host:port or dns:///host:port)",
    )


class GatewaySettings(TokenSettings):
    """Where the gateway listens and where its upstreams are."""

    model_config = SettingsConfigDict(env_prefix="PORTICO_GATEWAY_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", description="HTTP listen address")
    port: int = Field(default=8080, description="HTTP listen port")

    users_target: str = _target("users", 50051)
    auth_target: str = _target("auth", 50052)
    posts_target: str = _target("posts", 50053)
    broker_target: str = _target("broker", 50054)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", validation_alias=AliasChoices("PORTICO_KAFKA_BOOTSTRAP")
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("PORTICO_REDIS_URL")
    )
    rate_limit_per_ip: str = Field(
        default="100/minute", validation_alias=AliasChoices("PORTICO_RATE_LIMIT_PER_IP")
    )
    rate_limit_per_user: str = Field(
        default="1000/hour", validation_alias=AliasChoices("PORTICO_RATE_LIMIT_PER_USER")
    )
    rate_limit_login: str = Field(
        default="10/minute", validation_alias=AliasChoices("PORTICO_RATE_LIMIT_LOGIN")
    )
    rate_limit_fail_open: bool = Field(
        default=True,
        validation_alias=AliasChoices("PORTICO_RATE_LIMIT_FAIL_OPEN"),
        description="Redis unreachable: limit in process (true) or answer 503 (false)",
    )
    trusted_proxies: str = Field(
        default="",
        validation_alias=AliasChoices("PORTICO_TRUSTED_PROXIES"),
        description="Comma-separated addresses/CIDRs whose X-Forwarded-For is believed",
    )
    ready_timeout: float = Field(default=1.5, description="Seconds each /ready probe may take")
    routes_refresh_seconds: float = Field(default=30.0, gt=0, description="Route table refresh by reflection")
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest request body accepted (413 beyond)"
    )
    multipart_fields_bytes: int = Field(
        default=64 * 1024, gt=0, description="Upload routes: the text fields of a multipart body together"
    )
    stream_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="SSE: seconds of silence before a `: keep-alive` comment"
    )
    retry_attempts: int = Field(
        default=3,
        ge=1,
        description="Retryable reads: attempts in all (UNAVAILABLE only, within the deadline)",
    )
    retry_backoff_ms: float = Field(
        default=50.0, ge=0, description="Retryable reads: first backoff cap; doubles per retry, full jitter"
    )

    # TLS termination at the edge (PORTICO_GATEWAY_TLS_*): both files or neither; a client CA asks clients
    # for certificates (mTLS).
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate: serve HTTPS when set")
    tls_key_file: Path | None = Field(default=None, description="PEM private key for the certificate")
    tls_client_ca_file: Path | None = Field(default=None, description="CA bundle: require client certs")
    # TLS to the backends (PORTICO_GATEWAY_UPSTREAM_TLS_*), the client side of the backends' PORTICO_*_TLS_*.
    upstream_tls_ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the backends' certificates: call them over TLS"
    )
    upstream_tls_cert_file: Path | None = Field(
        default=None, description="PEM client certificate for backends that require mTLS"
    )
    upstream_tls_key_file: Path | None = Field(default=None, description="PEM key of the client certificate")
    cors_origins: str = Field(
        default="", description="Comma-separated origins allowed by CORS ('*' for any); empty turns CORS off"
    )
    cors_max_age: int = Field(default=600, ge=0, description="Seconds browsers may cache a preflight answer")
    docs_assets_dir: Path = Field(
        default=Path(__file__).resolve().parents[1] / "node_modules" / "swagger-ui-dist",
        description="swagger-ui-dist directory whose files /docs serves (no CDN)",
    )

    def upstream_targets(self) -> dict[str, str]:
        """Backend name → gRPC target."""
        return {
            "users": self.users_target,
            "auth": self.auth_target,
            "posts": self.posts_target,
            "broker": self.broker_target,
        }
