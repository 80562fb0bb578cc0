"""Run a backend: grpc.aio server with reflection, health, tracing and RED metrics, and graceful shutdown.

Every backend's ``__main__`` calls :func:`run_backend` with the :class:`~meshkit.rpc.runtime.BackendSpec`;
the kit builds the shared :class:`~meshkit.rpc.runtime.Runtime` (Kafka broker, Redis client, database,
metrics registry, tracer), asks the backend for its servicers and consumers, and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client import start_http_server as start_metrics_http_server

from meshkit.auth.interceptor import AuthInterceptor, public_methods, token_checks, token_fields
from meshkit.auth.keyfile import KeySetFile
from meshkit.auth.revocation_feed import RevocationFeed
from meshkit.config.defaults import GRPC_MAX_MESSAGE_BYTES
from meshkit.config.serve import BackendSettings, ServeSettings
from meshkit.config.stores import DatabaseSettings
from meshkit.events.broker import start_with_retry
from meshkit.memory import release_periodically
from meshkit.readiness import Impact
from meshkit.redis_client import connect
from meshkit.rpc.channels import open_channel, peer_credentials
from meshkit.rpc.forwarding import ForwarderTrust
from meshkit.rpc.health import AsyncHealthServicer, Dependency, HealthMonitor
from meshkit.rpc.interceptors.base import InterceptorChain
from meshkit.rpc.interceptors.forwarding import ForwardingInterceptor
from meshkit.rpc.interceptors.internal_errors import ErrorInterceptor
from meshkit.rpc.interceptors.metrics import GrpcServerMetrics, MetricsInterceptor
from meshkit.rpc.interceptors.text_guard import TextGuardInterceptor
from meshkit.rpc.interceptors.tracing import TracingInterceptor
from meshkit.rpc.interceptors.validation import ValidationInterceptor
from meshkit.rpc.probes import KafkaPing, kafka_dependency, redis_dependency
from meshkit.rpc.runtime import BackendSpec, Runtime, S, Service
from meshkit.rpc.tls import server_credentials
from meshkit.shutdown import ShutdownDeadline, accept_lead, exit_now
from meshkit.supervisor import own_port, shared_port, supervise_backend
from observability.telemetry import setup_telemetry

if TYPE_CHECKING:
    from meshkit.db.database import Database

log = logging.getLogger(__name__)

# Images are up to MAX_IMAGE_BYTES; the message limit leaves room for the rest of the request.
MAX_MESSAGE_BYTES = GRPC_MAX_MESSAGE_BYTES
CLOSE_CAP = 1.0  # seconds one client close may take during shutdown


def new_registry() -> CollectorRegistry:
    """A per-process registry with the standard process, platform and GC collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def connection_age_options(settings: ServeSettings) -> list[tuple[str, int]]:
    """Connections end after ``max_connection_age``: a client's channel then re-resolves its target and
    reconnects, so a replica that started since (a new address behind the name) gets calls too. The
    calls in flight finish first (within the grace when one is set); a call racing the GOAWAY is retried
    by gRPC itself, as it never reached the server."""
    options = [("grpc.max_connection_age_ms", round(settings.max_connection_age * 1000))]
    if settings.max_connection_age_grace is not None:
        options.append(("grpc.max_connection_age_grace_ms", round(settings.max_connection_age_grace * 1000)))
    return options


class BackendServer:
    """The gRPC server of one backend and the background tasks that keep its health current."""

    def __init__(
        self, runtime: Runtime[Any], services: Sequence[Service], authenticator: AuthInterceptor
    ) -> None:
        self.runtime = runtime
        self._services = services
        self._health = AsyncHealthServicer()
        self._forwarders = ForwarderTrust.from_settings(runtime.settings)
        # Order matters: the span opens first, metrics then see every outcome, auth runs next (a caller
        # without a valid token learns nothing of the rules), requests are then checked against their
        # proto rules, and unexpected errors are turned into a plain INTERNAL closest to the handler.
        # One chain, so each method is wrapped once rather than on every call.
        chain = InterceptorChain(
            [
                TracingInterceptor(runtime.telemetry.tracer_provider),
                MetricsInterceptor(GrpcServerMetrics(runtime.registry)),
                ForwardingInterceptor(self._forwarders),
                authenticator,
                TextGuardInterceptor(),
                ValidationInterceptor(),
                ErrorInterceptor(),
            ]
        )
        self._server = grpc.aio.server(
            interceptors=[chain],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # A port clash is an error, never two servers silently sharing: only the children of
                # one supervisor share their port (it checked that no other program holds it).
                ("grpc.so_reuseport", 1 if shared_port() else 0),
                *connection_age_options(runtime.settings),
            ],
        )
        names = [s.full_name for s in services]
        self.monitor = HealthMonitor(
            self._health,
            names,
            runtime.dependencies,
            interval=runtime.settings.health_interval,
            process=runtime.name,
            registry=runtime.registry,
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self.port = 0

    async def start(self) -> int:
        """Bind, start serving and begin health monitoring; returns the bound port."""
        settings = self.runtime.settings
        for service in self._services:
            service.register(self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [s.full_name for s in self._services] + ["grpc.health.v1.Health", reflection.SERVICE_NAME],
            self._server,
        )
        credentials = server_credentials(settings)
        if credentials is None:
            self.port = self._server.add_insecure_port(settings.address)
        else:
            self.port = self._server.add_secure_port(settings.address, credentials)
        await self._server.start()
        self._forwarders.log_at_start(mtls=settings.tls_client_ca_file is not None)
        await self.monitor.check_once()  # publish a real status before the first client asks
        self._tasks.append(asyncio.create_task(self.monitor.run(), name="health-monitor"))
        log.info(
            "serving",
            extra={
                "address": f"{settings.host}:{self.port}",
                "tls": credentials is not None,
                "services": [s.full_name for s in self._services],
            },
        )
        return self.port

    def spawn(self, coro: Any, name: str) -> None:
        """Run a background task that is cancelled on shutdown."""
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self, deadline: ShutdownDeadline | None = None) -> None:
        """Graceful stop: report NOT_SERVING, refuse new calls, let in-flight ones finish within the grace.

        Every step is bounded by ``deadline``: what does not end in time is logged by name and left."""
        grace = self.runtime.settings.shutdown_grace
        deadline = deadline or ShutdownDeadline(grace)
        log.info("shutting down", extra={"grace_s": grace})
        await deadline.bounded("health: report NOT_SERVING", self._health.enter_graceful_shutdown(), 1.0)
        for drain in self.runtime.drains:
            await deadline.bounded(f"drain {getattr(drain, '__qualname__', 'drain')}", drain(), 1.0)
        # gRPC's stop cancels the calls it has received but not yet handed to us (they are queued while the
        # event loop is busy): a call sent just before the signal would end CANCELLED. Keep accepting for a
        # moment, so every call already on its way is taken (and finished within the grace) first.
        await deadline.bounded("accepting the calls already sent", asyncio.sleep(accept_lead(grace)))
        # grpc's own stop cancels the calls still running at the grace; the bound covers a stop that hangs.
        await deadline.bounded("grpc server stop (in-flight calls)", self._server.stop(grace), grace + 1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await deadline.bounded(f"background task {task.get_name()}", task, 1.0)
        log.info("stopped")


async def _connect_kafka(server: BackendServer, runtime: Runtime[Any]) -> None:
    settings, topics = runtime.settings, runtime.topics

    async def create_topics() -> None:  # before FastStream's subscribers would create them unreplicated
        if topics is not None:
            await topics.ensure(runtime.subscribed_topics)

    await start_with_retry(
        runtime.event_broker,
        settings.kafka_bootstrap,
        security=settings.kafka_security(),
        prepare=create_topics,
    )
    await server.monitor.check_once()  # turn SERVING now rather than at the next interval
    for task in runtime.background:
        server.spawn(task(), getattr(task, "__name__", "background"))


def database_url(name: str, settings: BackendSettings) -> str:
    """The database of a backend whose spec names migrations; its settings must declare one."""
    if not isinstance(settings, DatabaseSettings):
        raise TypeError(
            f"the {name} backend names migrations but its settings declare no database: "
            "derive them from PublishingBackendSettings"
        )
    from meshkit.db.database import default_url  # SQLAlchemy: only in a backend with a database

    return settings.database_url or default_url(name)


async def open_database(name: str, url: str, migrations: Path, attempts: int = 30) -> Database:
    """Migrate to head (retrying while the database is not reachable yet) and open the engine."""
    from sqlalchemy.exc import SQLAlchemyError

    from meshkit.db.database import Database
    from meshkit.db.migrations import upgrade

    for attempt in range(1, attempts + 1):
        try:
            await upgrade(url, migrations, f"{name}_alembic_version")
            break
        except (OSError, SQLAlchemyError) as exc:
            if attempt == attempts:
                raise
            log.warning(
                "database not ready, retrying", extra={"attempt": attempt, "error": type(exc).__name__}
            )
            await asyncio.sleep(min(0.5 * attempt, 3.0))
    return Database(url)


async def serve(spec: BackendSpec[S], deadline: ShutdownDeadline | None = None) -> None:
    """Run a backend until SIGTERM or SIGINT, then shut down gracefully within ``deadline``."""
    name, settings = spec.name, spec.settings()
    deadline = deadline or ShutdownDeadline(settings.shutdown_grace)
    telemetry = setup_telemetry(f"portico-{name}", settings.telemetry())
    registry = new_registry()
    metrics_httpd, _ = start_metrics_http_server(
        own_port(settings.metrics_port), addr=settings.host, registry=registry
    )
    redis = connect(settings)
    peer_tls = peer_credentials(settings)  # every channel to a peer: the JWKS source and the backends
    auth_channel = open_channel(settings.jwks_target or settings.auth_target, credentials=peer_tls)
    db = None
    if spec.migrations is not None:
        db = await open_database(name, database_url(name, settings), spec.migrations)
    kept_keys = KeySetFile.beside_run_dir(name)  # verifies tokens after a restart while auth is down
    verifier, revocations = token_checks(auth_channel, redis, registry, settings, kept_keys=kept_keys)
    revocation_feed = RevocationFeed(
        settings.kafka_bootstrap,
        revocations.local,
        client_id=f"portico-{name}-revocations",
        registry=registry,
        security=settings.kafka_security(),
    )
    runtime: Runtime[S] = Runtime(
        name, settings, telemetry, registry, redis, revocations, db, peer_credentials=peer_tls
    )
    runtime.dependencies.append(redis_dependency(redis))
    if db is not None:  # its own database: the one dependency a backend cannot serve a call without
        runtime.dependencies.append(Dependency("database", db.ping, Impact.UNREADY))

    services = spec.services(runtime)
    spec.consumers(runtime)  # subscribed before the broker starts in _connect_kafka
    runtime.declared = True
    kafka_impact = Impact.UNREADY if spec.kafka_required else Impact.DEGRADED
    if runtime.event_broker is not None:
        kafka = kafka_dependency(runtime.event_broker, impact=kafka_impact)
    else:  # no outbox and no consumer asked for a broker: Kafka is asked directly
        ping = KafkaPing(
            settings.kafka_bootstrap, client_id=f"portico-{name}-health", security=settings.kafka_security()
        )
        runtime.on_shutdown(ping.close)
        kafka = ping.dependency(kafka_impact)
    runtime.dependencies.insert(0, kafka)
    authenticator = AuthInterceptor(
        verifier,
        revocations,
        public_methods(s.full_name for s in services),
        registry,
        prefetches={path: keys for s in services for path, keys in s.prefetches().items()},
        token_fields=token_fields(s.full_name for s in services),
    )
    server = BackendServer(runtime, services, authenticator)
    stop = asyncio.Event()

    def on_signal() -> None:
        deadline.arm()  # from the signal on, the process has grace + margin to exit
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await server.start()
        server.spawn(revocation_feed.run(), "revocation-feed")
        server.spawn(release_periodically(), "memory-release")
        server.spawn(_connect_kafka(server, runtime), "kafka-connect")
        await stop.wait()
        await server.stop(deadline)
    finally:
        await _close(runtime, auth_channel, deadline)
        with deadline.step("metrics server shutdown"):
            metrics_httpd.shutdown()
        with deadline.step("telemetry shutdown (span export)"):
            telemetry.shutdown()


async def _close(runtime: Runtime[Any], auth_channel: grpc.aio.Channel, deadline: ShutdownDeadline) -> None:
    """Close the shared clients, each within the time left. Kafka's flush never ends while Kafka is away;
    the outbox keeps anything unacknowledged, so it is simply given up. A client close takes milliseconds
    when it works, so each is capped: one that hangs must not eat the time the steps after it need (on a
    busy machine the metrics and telemetry shutdown after it took more than the reserve)."""
    if runtime.event_broker is not None:
        await deadline.bounded("kafka broker stop (producer flush)", runtime.event_broker.stop())
    await deadline.bounded("redis close", runtime.redis.aclose(), CLOSE_CAP)
    await deadline.bounded("jwks channel close", auth_channel.close(grace=None), CLOSE_CAP)
    for opened in runtime.channels:
        await deadline.bounded("backend channel close", opened.close(grace=None), CLOSE_CAP)
    for close in runtime.closers:
        await deadline.bounded(f"close {getattr(close, '__qualname__', 'resource')}", close(), CLOSE_CAP)
    if runtime.db is not None:
        await deadline.bounded("database dispose", runtime.db.dispose(), CLOSE_CAP)


def run_backend(spec: BackendSpec[S]) -> None:
    """Entry point for ``python -m backends.<name>``: serve, shut down within the deadline, exit."""
    settings = spec.settings()
    status = supervise_backend(settings, spec.name)  # the backends' entry points asked already
    if status is not None:
        exit_now(status)
    held = _hold_database(spec, settings)  # kept open (locked) until the process exits
    deadline = ShutdownDeadline(settings.shutdown_grace)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve(spec, deadline))
    # serve() closed everything it owns; what is left (tasks a cancelled call left behind, worker threads)
    # would only delay the exit, or hold it forever, so the process ends here.
    del held
    exit_now(0)


def _hold_database(spec: BackendSpec[S], settings: S) -> IO[str] | None:
    """The lock of the backend's SQLite file (none for PostgreSQL); exit 1 when another process holds it."""
    if spec.migrations is None:
        return None
    from meshkit.db.single_replica import DatabaseHeld, hold_sqlite

    try:
        return hold_sqlite(database_url(spec.name, settings))
    except DatabaseHeld as exc:
        log.error("database held by another process", extra={"error": str(exc)})
        print(f"{spec.name}: {exc}", file=sys.stderr)
        exit_now(1)
