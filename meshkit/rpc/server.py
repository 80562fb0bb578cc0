"""Run a backend: grpc.aio server with reflection, health, tracing and RED metrics, and graceful shutdown.

Every backend's ``__main__`` calls :func:`run_backend` with its settings and a function that builds its
servicers from the shared :class:`Runtime` (Kafka broker, Redis client, metrics registry, tracer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from faststream.kafka import KafkaBroker
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client import start_http_server as start_metrics_http_server
from redis.asyncio import Redis
from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError

from meshkit.auth.interceptor import AuthInterceptor, public_methods, token_checks
from meshkit.auth.revocation import RevocationChecker
from meshkit.config.defaults import GRPC_MAX_MESSAGE_BYTES
from meshkit.config.serve import BackendSettings
from meshkit.db.database import Database, default_url
from meshkit.db.migrations import upgrade
from meshkit.events.broker import build_broker, start_with_retry
from meshkit.events.consumers import EventConsumer
from meshkit.events.outbox import Outbox
from meshkit.events.relay import OutboxRelay
from meshkit.events.retention import Retention
from meshkit.rpc.channels import ROUND_ROBIN, open_channel
from meshkit.rpc.health import AsyncHealthServicer, Dependency, HealthMonitor
from meshkit.rpc.interceptors.internal_errors import ErrorInterceptor
from meshkit.rpc.interceptors.metrics import GrpcServerMetrics, MetricsInterceptor
from meshkit.rpc.interceptors.text_guard import TextGuardInterceptor
from meshkit.rpc.probes import kafka_dependency, redis_dependency
from meshkit.rpc.tls import server_credentials
from observability.telemetry import Telemetry, setup_telemetry

log = logging.getLogger(__name__)

# Images are up to MAX_IMAGE_BYTES; the message limit leaves room for the rest of the request.
MAX_MESSAGE_BYTES = GRPC_MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class Service:
    """One gRPC service to host: its full name (for reflection and health) and how to register it."""

    full_name: str
    register: Callable[[grpc.aio.Server], None]

    @classmethod
    def of(
        cls,
        file: FileDescriptor,
        name: str,
        servicer: object,
        add: Callable[[Any, grpc.aio.Server], None],
    ) -> Service:
        """The service ``name`` of a generated ``*_pb2`` file, registered with its ``add_*_to_server``."""
        return cls(file.services_by_name[name].full_name, lambda server: add(servicer, server))


@dataclass
class Runtime:
    """Shared resources a backend's servicers may use; owned and closed by the kit."""

    name: str
    settings: BackendSettings
    telemetry: Telemetry
    registry: CollectorRegistry
    broker: KafkaBroker
    redis: Redis
    revocations: RevocationChecker  # the same checks the authenticator runs, for long-lived calls
    db: Database | None = None
    dependencies: list[Dependency] = field(default_factory=list)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    channels: list[grpc.aio.Channel] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    drains: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def channel(self, target: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
        """A channel to another backend (round robin over the target's addresses), closed on shutdown;
        plaintext unless ``credentials`` are given."""
        opened = open_channel(
            target,
            credentials=credentials,
            options=(ROUND_ROBIN,),
            # A CLIENT span per call whose context travels in the metadata: the called backend's span
            # joins this request's trace.
            interceptors=aio_client_interceptors(tracer_provider=self.telemetry.tracer_provider),  # type: ignore[no-untyped-call]
        )
        self.channels.append(opened)
        return opened

    def on_drain(self, drain: Callable[[], Awaitable[None]]) -> None:
        """Call ``drain()`` when shutdown begins, before in-flight calls get their grace: for calls that
        would otherwise never end by themselves, such as live streams."""
        self.drains.append(drain)

    def on_shutdown(self, close: Callable[[], Awaitable[None]]) -> None:
        """Call ``close()`` after the server stopped serving (for clients the servicers own)."""
        self.closers.append(close)

    def run_in_background(self, task: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``task()`` while the server runs (started after Kafka connects, cancelled on shutdown)."""
        self.background.append(task)

    def expire(self, table: Table, column: str, hours: float) -> None:
        """Remove rows of ``table`` whose timestamp ``column`` is older than ``hours``, in the background."""
        assert self.db is not None, "retention needs the backend's database (BackendSpec.migrations)"
        retention = Retention(self.db, table, column, timedelta(hours=hours), self.registry)
        self.run_in_background(retention.run)

    def event_consumer(self, processed: Table, group_id: str) -> EventConsumer:
        """An idempotent consumer recording applied events in ``processed``, which is kept for
        ``processed_events_retention_hours``."""
        assert self.db is not None, "a consumer needs the backend's database (BackendSpec.migrations)"
        self.expire(processed, "processed_at", self.settings.processed_events_retention_hours)
        return EventConsumer(self.db, processed, group_id, registry=self.registry)

    def outbox(self, table: Table) -> Outbox:
        """The backend's outbox on ``table``, with its relay publishing to Kafka in the background and its
        published rows kept for ``outbox_retention_hours``."""
        assert self.db is not None, "an outbox needs the backend's database (BackendSpec.migrations)"
        self.expire(table, "published_at", self.settings.outbox_retention_hours)
        relay = OutboxRelay(
            self.db,
            self.broker,
            table,
            tracer_provider=self.telemetry.tracer_provider,
            registry=self.registry,
        )
        self.run_in_background(relay.run)
        return Outbox(table, wake=relay.wake)


ServiceFactory = Callable[[Runtime], Sequence[Service]]


@dataclass(frozen=True)
class BackendSpec:
    """What makes one backend: its name, settings, services and (optionally) its database migrations."""

    name: str
    settings: BackendSettings
    services: ServiceFactory
    migrations: Path | None = None  # Alembic folder; the backend then gets ``runtime.db``


def new_registry() -> CollectorRegistry:
    """A per-process registry with the standard process, platform and GC collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class BackendServer:
    """The gRPC server of one backend and the background tasks that keep its health current."""

    def __init__(self, runtime: Runtime, services: Sequence[Service], authenticator: AuthInterceptor) -> None:
        self.runtime = runtime
        self._services = services
        self._health = AsyncHealthServicer()
        # Order matters: the span opens first, metrics then see every outcome, auth runs next, and
        # unexpected errors are turned into a plain INTERNAL closest to the handler.
        self._server = grpc.aio.server(
            interceptors=[
                aio_server_interceptor(tracer_provider=runtime.telemetry.tracer_provider),  # type: ignore[no-untyped-call]
                MetricsInterceptor(GrpcServerMetrics(runtime.registry)),
                authenticator,
                TextGuardInterceptor(),
                ErrorInterceptor(),
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        names = [s.full_name for s in services]
        self.monitor = HealthMonitor(
            self._health, names, runtime.dependencies, interval=runtime.settings.health_interval
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

    async def stop(self) -> None:
        """Graceful stop: report NOT_SERVING, refuse new calls, let in-flight ones finish within the grace."""
        grace = self.runtime.settings.shutdown_grace
        log.info("shutting down", extra={"grace_s": grace})
        await self._health.enter_graceful_shutdown()
        for drain in self.runtime.drains:
            await drain()
        await self._server.stop(grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        log.info("stopped")


async def _connect_kafka(server: BackendServer, runtime: Runtime) -> None:
    await start_with_retry(runtime.broker, runtime.settings.kafka_bootstrap)
    await server.monitor.check_once()  # turn SERVING now rather than at the next interval
    for task in runtime.background:
        server.spawn(task(), getattr(task, "__name__", "background"))


async def open_database(spec: BackendSpec, attempts: int = 30) -> Database:
    """Migrate to head (retrying while the database is not reachable yet) and open the engine."""
    assert spec.migrations is not None
    url = spec.settings.database_url or default_url(spec.name)
    for attempt in range(1, attempts + 1):
        try:
            await upgrade(url, spec.migrations, f"{spec.name}_alembic_version")
            break
        except (OSError, SQLAlchemyError) as exc:
            if attempt == attempts:
                raise
            log.warning(
                "database not ready, retrying", extra={"attempt": attempt, "error": type(exc).__name__}
            )
            await asyncio.sleep(min(0.5 * attempt, 3.0))
    return Database(url)


async def _stop_broker(broker: KafkaBroker, timeout: float) -> None:
    """Stop the broker, but not forever: aiokafka flushes pending sends first, which never ends while
    Kafka is away, and the outbox keeps anything unacknowledged anyway."""
    try:
        await asyncio.wait_for(broker.stop(), timeout)
    except TimeoutError:
        log.warning("kafka broker did not stop in time; unacknowledged events stay in the outbox")


async def serve(spec: BackendSpec) -> None:
    """Run a backend until SIGTERM or SIGINT, then shut down gracefully."""
    name, settings = spec.name, spec.settings
    telemetry = setup_telemetry(f"portico-{name}", settings.telemetry())
    registry = new_registry()
    metrics_httpd, _ = start_metrics_http_server(settings.metrics_port, addr=settings.host, registry=registry)
    broker = build_broker(
        settings.kafka_bootstrap,
        service=name,
        tracer_provider=telemetry.tracer_provider,
        registry=registry,
        graceful_timeout=settings.shutdown_grace,
    )
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    auth_channel = open_channel(settings.jwks_target or settings.auth_target)
    db = await open_database(spec) if spec.migrations is not None else None
    verifier, revocations = token_checks(auth_channel, redis, registry, settings)
    runtime = Runtime(name, settings, telemetry, registry, broker, redis, revocations, db)
    runtime.dependencies.extend([kafka_dependency(broker), redis_dependency(redis)])
    if db is not None:
        runtime.dependencies.append(Dependency("database", db.ping))

    services = spec.services(runtime)
    authenticator = AuthInterceptor(
        verifier, revocations, public_methods(s.full_name for s in services), registry
    )
    server = BackendServer(runtime, services, authenticator)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        server.spawn(_connect_kafka(server, runtime), "kafka-connect")
        await stop.wait()
        await server.stop()
    finally:
        await _stop_broker(broker, settings.shutdown_grace)
        await redis.aclose()
        await auth_channel.close(grace=None)
        for opened in runtime.channels:
            await opened.close(grace=None)
        for close in runtime.closers:
            await close()
        if db is not None:
            await db.dispose()
        metrics_httpd.shutdown()
        telemetry.shutdown()


def run_backend(spec: BackendSpec) -> None:
    """Entry point for ``python -m backends.<name>``."""
    asyncio.run(serve(spec))
