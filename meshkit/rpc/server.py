"""Run a backend: grpc.aio server with reflection, health, tracing and RED metrics, and graceful shutdown.

Every backend's ``__main__`` calls :func:`run_backend` with its :class:`~meshkit.rpc.runtime.BackendSpec`;
the kit builds the shared :class:`~meshkit.rpc.runtime.Runtime` (Kafka broker, Redis client, database,
metrics registry, tracer), asks the backend for its servicers and consumers, and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client import start_http_server as start_metrics_http_server
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError

from meshkit.auth.interceptor import AuthInterceptor, public_methods, token_checks
from meshkit.auth.keyfile import KeySetFile
from meshkit.auth.revocation_feed import RevocationFeed
from meshkit.config.defaults import GRPC_MAX_MESSAGE_BYTES
from meshkit.config.serve import BackendSettings
from meshkit.config.stores import DatabaseSettings
from meshkit.db.database import Database, default_url
from meshkit.db.migrations import upgrade
from meshkit.events.broker import build_broker, start_with_retry
from meshkit.readiness import Impact
from meshkit.rpc.channels import open_channel
from meshkit.rpc.forwarding import ForwarderTrust
from meshkit.rpc.health import AsyncHealthServicer, Dependency, HealthMonitor
from meshkit.rpc.interceptors.forwarding import ForwardingInterceptor
from meshkit.rpc.interceptors.internal_errors import ErrorInterceptor
from meshkit.rpc.interceptors.metrics import GrpcServerMetrics, MetricsInterceptor
from meshkit.rpc.interceptors.text_guard import TextGuardInterceptor
from meshkit.rpc.probes import kafka_dependency, redis_dependency
from meshkit.rpc.runtime import BackendSpec, Runtime, S, Service
from meshkit.rpc.tls import server_credentials
from meshkit.shutdown import ShutdownDeadline, accept_lead, exit_now
from meshkit.supervisor import own_port, process_index, shared_port, supervise
from observability.telemetry import setup_telemetry

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


class BackendServer:
    """The gRPC server of one backend and the background tasks that keep its health current."""

    def __init__(
        self, runtime: Runtime[Any], services: Sequence[Service], authenticator: AuthInterceptor
    ) -> None:
        self.runtime = runtime
        self._services = services
        self._health = AsyncHealthServicer()
        self._forwarders = ForwarderTrust.from_settings(runtime.settings)
        # Order matters: the span opens first, metrics then see every outcome, auth runs next, and
        # unexpected errors are turned into a plain INTERNAL closest to the handler.
        self._server = grpc.aio.server(
            interceptors=[
                aio_server_interceptor(tracer_provider=runtime.telemetry.tracer_provider),  # type: ignore[no-untyped-call]
                MetricsInterceptor(GrpcServerMetrics(runtime.registry)),
                ForwardingInterceptor(self._forwarders),
                authenticator,
                TextGuardInterceptor(),
                ErrorInterceptor(),
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # A port clash is an error, never two servers silently sharing: only the children of
                # one supervisor share their port (it checked that no other program holds it).
                ("grpc.so_reuseport", 1 if shared_port() else 0),
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
    await start_with_retry(runtime.broker, runtime.settings.kafka_bootstrap)
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
    return settings.database_url or default_url(name)


async def open_database(name: str, url: str, migrations: Path, attempts: int = 30) -> Database:
    """Migrate to head (retrying while the database is not reachable yet) and open the engine."""
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
    broker = build_broker(
        settings.kafka_bootstrap,
        service=name,
        tracer_provider=telemetry.tracer_provider,
        registry=registry,
        graceful_timeout=settings.shutdown_grace,
    )
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    auth_channel = open_channel(settings.jwks_target or settings.auth_target)
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
    )
    runtime: Runtime[S] = Runtime(name, settings, telemetry, registry, broker, redis, revocations, db)
    kafka_impact = Impact.UNREADY if spec.kafka_required else Impact.DEGRADED
    runtime.dependencies.extend([kafka_dependency(broker, impact=kafka_impact), redis_dependency(redis)])
    if db is not None:  # its own database: the one dependency a backend cannot serve a call without
        runtime.dependencies.append(Dependency("database", db.ping, Impact.UNREADY))

    services = spec.services(runtime)
    spec.consumers(runtime)  # subscribed before the broker starts in _connect_kafka
    authenticator = AuthInterceptor(
        verifier, revocations, public_methods(s.full_name for s in services), registry
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
    await deadline.bounded("kafka broker stop (producer flush)", runtime.broker.stop())
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
    if settings.processes > 1 and process_index() is None:
        ports = [settings.port, *(settings.metrics_port + i for i in range(settings.processes))]
        exit_now(supervise(settings.processes, settings.host, ports, spec.name))
    deadline = ShutdownDeadline(settings.shutdown_grace)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve(spec, deadline))
    # serve() closed everything it owns; what is left (tasks a cancelled call left behind, worker threads)
    # would only delay the exit, or hold it forever, so the process ends here.
    exit_now(0)
