"""Settings of the gateway (``PORTICO_GATEWAY_*``, plus the mesh-wide ``PORTICO_*`` it reads)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.multipart import MAX_PARTS
from gateway.transcode.json_depth import MAX_JSON_DEPTH
from meshkit.config.base import env, settings_config
from meshkit.config.defaults import GATEWAY_PORT, LOOPBACK
from meshkit.config.events import KafkaSettings
from meshkit.config.peers import AuthPeer, BrokerPeer, PostsPeer, UsersPeer
from meshkit.config.serve import ForwardingSecret, ProcessesSettings, ShutdownSettings
from meshkit.config.stores import RedisSettings
from meshkit.config.telemetry import TelemetrySettings
from meshkit.config.tokens import TokenSettings


def _swagger_ui_dist() -> Path:
    """``node_modules/swagger-ui-dist`` in the repository."""
    return Path(__file__).resolve().parents[1] / "node_modules" / "swagger-ui-dist"


class GatewaySettings(
    TokenSettings,
    UsersPeer,
    AuthPeer,
    PostsPeer,
    BrokerPeer,
    KafkaSettings,
    RedisSettings,
    TelemetrySettings,
    ShutdownSettings,
    ProcessesSettings,
    ForwardingSecret,
):
    """Where the gateway listens and where its upstreams are; limits, retries, CORS and TLS at the edge."""

    model_config = settings_config("gateway")

    host: str = Field(default=LOOPBACK, description="HTTP listen address")
    port: int = Field(default=GATEWAY_PORT, description="HTTP listen port (REST, SSE, /docs and /metrics)")
    metrics_port: int | None = Field(
        default=None,
        description=(
            "With processes > 1: process i also listens on this port + i, answering only /metrics, "
            "/health and /ready (the shared port answers from any process); default the HTTP port + 1"
        ),
    )

    # Each limit is N/second|minute|hour|day; the older unprefixed names are the public contract's.
    rate_limit_per_ip: str = env(
        "PORTICO_GATEWAY_RATE_LIMIT_PER_IP",
        "PORTICO_RATE_LIMIT_PER_IP",
        default="100/minute",
        description="Requests one client IP may make (N/second|minute|hour|day)",
    )
    rate_limit_per_user: str = env(
        "PORTICO_GATEWAY_RATE_LIMIT_PER_USER",
        "PORTICO_RATE_LIMIT_PER_USER",
        default="1000/hour",
        description="Requests one authenticated user may make (N/second|minute|hour|day)",
    )
    rate_limit_login: str = env(
        "PORTICO_GATEWAY_RATE_LIMIT_LOGIN",
        "PORTICO_RATE_LIMIT_LOGIN",
        default="10/minute",
        description="Login attempts one client IP may make (N/second|minute|hour|day)",
    )
    rate_limit_signup: str = env(
        "PORTICO_GATEWAY_RATE_LIMIT_SIGNUP",
        default="20/hour",
        description="Accounts one client IP may create: the signup class (N/second|minute|hour|day)",
    )
    rate_limit_password: str = env(
        "PORTICO_GATEWAY_RATE_LIMIT_PASSWORD",
        default="10/hour",
        description="Password changes and resets one caller may make: the password class (N/…)",
    )
    rate_limit_search: str = env(
        "PORTICO_GATEWAY_RATE_LIMIT_SEARCH",
        default="60/minute",
        description="Searches one caller may make: routes of the search class (N/second|minute|hour|day)",
    )
    rate_limit_fail_open: bool = Field(
        default=True, description="Redis unreachable: limit in process (true) or answer 503 (false)"
    )
    trusted_proxies: str = env(
        "PORTICO_GATEWAY_TRUSTED_PROXIES",
        "PORTICO_TRUSTED_PROXIES",
        default="",
        description="Comma-separated addresses/CIDRs whose X-Forwarded-For is believed",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's line and headers (408 and closed beyond)",
    )
    ready_timeout: float = Field(default=1.5, description="Seconds each /ready probe may take")
    routes_refresh_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between refreshes of the route table by gRPC reflection"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body in bytes (413 beyond); upload routes set their own file limits",
    )
    max_json_depth: int = Field(
        default=MAX_JSON_DEPTH,
        ge=1,
        # protobuf's JSON parser refuses messages nested deeper than 100 anyway
        le=100,
        description="Deepest nesting of arrays/objects in a JSON body (400 beyond; scanned before parsing)",
    )
    multipart_fields_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Upload routes: largest size in bytes of a multipart body's text fields together",
    )
    multipart_max_parts: int = Field(
        default=MAX_PARTS, ge=1, description="Upload routes: most parts in one multipart body (400 beyond)"
    )
    stream_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="SSE: seconds of silence before a `: keep-alive` comment"
    )
    access_log: bool = Field(
        default=True, description="One JSON line per request (logger gateway.access, level INFO)"
    )
    access_log_sample_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of requests the access log writes, drawn per request; every 5xx is written",
    )
    compression: bool = Field(
        default=True, description="Compress JSON answers (br or gzip) for clients that accept it"
    )
    compress_min_bytes: int = Field(
        default=1024, ge=0, description="Smallest JSON answer in bytes that is compressed"
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
    tls_client_ca_file: Path | None = Field(
        default=None, description="CA bundle: require client certificates signed by it (mTLS)"
    )
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
        default_factory=_swagger_ui_dist,
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
