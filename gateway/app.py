"""The gateway application, declared as data: routes, middleware and a lifespan that owns the clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route, request_response

from gateway.access_log import AccessLog
from gateway.client_ip import parse_networks
from gateway.compression import Compression
from gateway.config import GatewaySettings
from gateway.cors import cors_middleware
from gateway.dispatch import dispatch
from gateway.edge_auth import EdgeAuth
from gateway.errors import UnhandledErrorMiddleware, http_exception_handler, unhandled_exception_handler
from gateway.health import health, ready
from gateway.metrics import GatewayMetrics, metrics_endpoint
from gateway.openapi.endpoints import OpenApiDocs
from gateway.probes import (
    ROUTES,
    KafkaProbe,
    Probe,
    close_quietly,
    gateway_impacts,
    grpc_health_probe,
    redis_probe,
    routes_probe,
)
from gateway.ratelimit.edge import EdgeLimits
from gateway.ratelimit.limiter import RedisLimiter
from gateway.request_edge import RequestEdgeMiddleware
from gateway.rest_shortcut import rest_shortcut
from gateway.routing.live import LiveRoutes
from gateway.state import State
from gateway.upstreams import Upstreams
from meshkit.auth.interceptor import token_checks
from meshkit.auth.keyfile import KeySetFile
from meshkit.auth.revocation_feed import RevocationFeed
from meshkit.memory import release_periodically
from meshkit.readiness import Readiness
from meshkit.redis_client import RedisClient, connect


def build_edge_auth(
    settings: GatewaySettings, upstreams: Upstreams, redis: RedisClient, metrics: GatewayMetrics
) -> EdgeAuth:
    verifier, revocations = token_checks(
        upstreams.channels["auth"],
        redis,
        metrics.registry,
        settings,
        kept_keys=KeySetFile.beside_run_dir("gateway"),
    )
    return EdgeAuth(verifier, revocations)


def create_app(
    settings: GatewaySettings | None = None, *, tracer_provider: TracerProvider | None = None
) -> Starlette:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        upstreams = Upstreams.from_settings(settings)
        redis = connect(settings)
        kafka = KafkaProbe(
            settings.kafka_bootstrap, settings.ready_timeout, security=settings.kafka_security()
        )
        routes = LiveRoutes(upstreams.channels)
        probes: dict[str, Probe] = {ROUTES: routes_probe(routes)}
        for name, channel in upstreams.channels.items():
            probes[name] = grpc_health_probe(channel, settings.ready_timeout)
        probes["redis"] = redis_probe(redis)
        probes["kafka"] = kafka
        metrics = GatewayMetrics()
        edge_auth = build_edge_auth(settings, upstreams, redis, metrics)
        refresher = asyncio.create_task(
            routes.refresh_forever(settings.routes_refresh_seconds), name="routes"
        )
        revocation_feed = RevocationFeed(
            settings.kafka_bootstrap,
            edge_auth.revocations.local,
            client_id="portico-gateway-revocations",
            registry=metrics.registry,
            security=settings.kafka_security(),
        )
        feeder = asyncio.create_task(revocation_feed.run(), name="revocation-feed")
        releaser = asyncio.create_task(release_periodically(), name="memory-release")
        try:
            yield State(
                settings=settings,
                metrics=metrics,
                upstreams=upstreams,
                redis=redis,
                probes=probes,
                readiness=Readiness("gateway", gateway_impacts(probes), metrics.registry),
                routes=routes,
                edge_auth=edge_auth,
                limiter=RedisLimiter(redis, metrics.registry, fail_open=settings.rate_limit_fail_open),
                edge_limits=EdgeLimits(settings),
                trusted_proxies=parse_networks(settings.trusted_proxies),
            )
        finally:
            refresher.cancel()
            feeder.cancel()
            releaser.cancel()
            await asyncio.wait({feeder}, timeout=5)  # lets its Kafka consumer close
            await close_quietly(kafka.close)
            await close_quietly(redis.aclose)
            await upstreams.close()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *OpenApiDocs(settings.docs_assets_dir).routes(),  # /openapi.json, /docs
        ],
        # Span, request id, metrics and access log outermost, in one layer: the span is current for the
        # metrics (exemplars), the log line and the backend call, and every response carries the request id.
        middleware=[
            Middleware(
                RequestEdgeMiddleware,
                tracer_provider=tracer_provider,
                access_log=AccessLog(settings.access_log_sample_ratio) if settings.access_log else None,
                compression=Compression(settings.compress_min_bytes) if settings.compression else None,
            ),
            *cors_middleware(settings.cors_origins, settings.cors_max_age),  # preflights: no token, no limit
            Middleware(UnhandledErrorMiddleware),  # innermost: a crash is a 500 with the request id
        ],
        exception_handlers={HTTPException: http_exception_handler, Exception: unhandled_exception_handler},
        lifespan=lifespan,
    )
    # Every path the operations routes do not claim is a REST route of the contract (or a 404/405).
    app.router.default = request_response(dispatch)
    app.router.middleware_stack = rest_shortcut(app.router)  # REST paths skip the operations routes
    return app
