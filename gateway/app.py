"""The gateway application, declared as data: routes, middleware and a lifespan that owns the clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route, request_response

from gateway.client_ip import parse_networks
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
from gateway.request_id import RequestIdMiddleware
from gateway.request_metrics import RequestMetricsMiddleware
from gateway.routing.live import LiveRoutes
from gateway.state import State
from gateway.tracing import TracingMiddleware
from gateway.upstreams import Upstreams
from meshkit.auth.interceptor import token_checks
from meshkit.auth.keyfile import KeySetFile
from meshkit.auth.revocation_feed import RevocationFeed
from meshkit.readiness import Readiness


def build_edge_auth(
    settings: GatewaySettings, upstreams: Upstreams, redis: Redis, metrics: GatewayMetrics
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
        redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        kafka = KafkaProbe(settings.kafka_bootstrap, settings.ready_timeout)
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
        )
        feeder = asyncio.create_task(revocation_feed.run(), name="revocation-feed")
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
        # Tracing outermost: its span is current for the metrics (exemplars) and the backend call.
        middleware=[
            Middleware(TracingMiddleware, tracer_provider=tracer_provider),
            Middleware(RequestMetricsMiddleware),
            Middleware(RequestIdMiddleware),
            *cors_middleware(settings.cors_origins, settings.cors_max_age),  # preflights: no token, no limit
            Middleware(UnhandledErrorMiddleware),  # innermost: a crash is a 500 with the request id
        ],
        exception_handlers={HTTPException: http_exception_handler, Exception: unhandled_exception_handler},
        lifespan=lifespan,
    )
    # Every path the operations routes do not claim is a REST route of the contract (or a 404/405).
    app.router.default = request_response(dispatch)
    return app
