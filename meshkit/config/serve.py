"""How a backend serves gRPC: where it listens, TLS/mTLS, whose forwarded client address it believes,
health checks and draining.

The address, metrics port and TLS files are the process's own (``PORTICO_<PROCESS>_*``); the forwarders'
credentials and the timing of health checks and shutdown are mesh-wide (``PORTICO_*``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from meshkit.config import defaults
from meshkit.config.base import MeshSettings, env
from meshkit.config.events import ConsumerSettings, KafkaSettings, OutboxSettings
from meshkit.config.peers import JwksPeer, PeerTls
from meshkit.config.stores import DatabaseSettings, RedisSettings, RunDirSettings
from meshkit.config.telemetry import TelemetrySettings
from meshkit.config.tokens import TokenSettings


def ports(backend: str) -> tuple[int, int]:
    """Default gRPC and metrics ports of ``backend``."""
    return defaults.BACKEND_PORTS[backend], defaults.METRICS_PORTS[backend]


class ShutdownSettings(MeshSettings):
    """How long a process (a backend or the gateway) lets in-flight work finish after SIGTERM; it exits
    within this grace plus two seconds whatever hangs (:mod:`meshkit.shutdown`)."""

    shutdown_grace: float = env(
        "PORTICO_SHUTDOWN_GRACE", default=8.0, description="Seconds in-flight calls may finish after SIGTERM"
    )


class ProcessesSettings(MeshSettings):
    """How many processes serve one port (:mod:`meshkit.supervisor`): the process's own prefix, e.g.
    ``PORTICO_GATEWAY_PROCESSES`` or ``PORTICO_USERS_PROCESSES``."""

    processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Serving processes sharing the port (SO_REUSEPORT) under a supervisor; each serves its "
            "metrics on its own port, the metrics port + its index (0 to N-1)"
        ),
    )


class ForwardingSecret(MeshSettings):
    """The credential of a forwarder of client addresses: the gateway, and auth when it calls users."""

    forwarding_secret: SecretStr | None = env(
        "PORTICO_FORWARDING_SECRET",
        default=None,  # no length constraint: a validation error would print the value
        description=(
            "Shared secret (32+ random characters) the gateway, and auth calling users, send so that "
            "backends believe their x-client-ip; the same in every process (`make up` generates one)"
        ),
    )


class ForwardingSettings(ForwardingSecret):
    """Whose ``x-client-ip`` a backend believes (:mod:`meshkit.rpc.forwarding`); nobody's when neither is
    set: a caller is then known by its peer address."""

    trusted_forwarders: str = env(
        "PORTICO_TRUSTED_FORWARDERS",
        default="",
        description=(
            "Comma-separated client-certificate identities (SAN, else CN) whose x-client-ip is believed: "
            "the gateway's, in mTLS deployments"
        ),
    )

    def forwarder_identities(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.trusted_forwarders.split(",") if part.strip())


class ServeSettings(ShutdownSettings, ProcessesSettings):
    """A gRPC server with a Prometheus endpoint. Each backend gives ``port`` and ``metrics_port`` their
    defaults (:mod:`meshkit.config.defaults`)."""

    host: str = Field(default=defaults.LOOPBACK, description="Address the gRPC and metrics servers bind")
    port: int = Field(description="gRPC listen port")
    metrics_port: int = Field(description="Prometheus /metrics port")
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate: serve TLS when set")
    tls_key_file: Path | None = Field(default=None, description="PEM private key of the certificate")
    tls_client_ca_file: Path | None = Field(
        default=None, description="CA bundle: require client certificates signed by it (mTLS)"
    )
    max_connection_age: float = env(
        "PORTICO_GRPC_MAX_CONNECTION_AGE",
        default=30.0,
        gt=0,
        description=(
            "Seconds a client's connection lives (±10%) before the server asks it to reconnect (GOAWAY): "
            "clients re-resolve their target, so replicas started since get their share of calls"
        ),
    )
    max_connection_age_grace: float | None = env(
        "PORTICO_GRPC_MAX_CONNECTION_AGE_GRACE",
        default=None,
        gt=0,
        description=(
            "Seconds the calls on an aged connection may still take before it is closed; unset: until "
            "they end (a subscription stream may last hours)"
        ),
    )
    health_interval: float = env(
        "PORTICO_HEALTH_INTERVAL",
        default=2.0,
        description="Seconds between checks of the dependencies reported by grpc.health.v1",
    )

    @property
    def address(self) -> str:
        """``host:port`` for ``add_*_port``."""
        return f"{self.host}:{self.port}"


class BackendSettings(
    ServeSettings,
    ForwardingSettings,
    KafkaSettings,
    RedisSettings,
    RunDirSettings,
    TokenSettings,
    JwksPeer,
    PeerTls,
    TelemetrySettings,
):
    """What the kit's backend runner reads for every backend: the server, Kafka, Redis, token checks, the
    JWKS source, TLS to the peers and telemetry. Each backend's ``config.py`` adds its own fields and sets
    its prefix and ports; a backend with a database starts from :class:`PublishingBackendSettings`."""

    def telemetry(self) -> TelemetrySettings:
        """The telemetry part of these settings (they are telemetry settings too)."""
        return self


class PublishingBackendSettings(BackendSettings, DatabaseSettings, OutboxSettings):
    """A backend with its own database whose events leave through its outbox."""


class ConsumingBackendSettings(PublishingBackendSettings, ConsumerSettings):
    """A publishing backend that also applies other backends' events."""
