"""The FastStream Kafka broker every backend runs inside its own asyncio loop.

Built with tracing (``traceparent`` in headers) and Prometheus middlewares, an idempotent producer with
``acks=all``, and started in the background with back-off so that a backend comes up (NOT_SERVING)
while Kafka is still down and turns SERVING once it answers.

FastStream (with the uvicorn it pulls in, about 9 MiB) is imported by :func:`build_broker` only: a
backend that neither relays an outbox nor consumes events never builds one (:mod:`meshkit.rpc.runtime`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from meshkit.events.security import PLAINTEXT, KafkaSecurity
from meshkit.events.topics import TopicCreationError

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker

log = logging.getLogger(__name__)


def build_broker(
    bootstrap: str,
    *,
    service: str,
    tracer_provider: TracerProvider | None,
    registry: CollectorRegistry,
    graceful_timeout: float = 8.0,
    security: KafkaSecurity = PLAINTEXT,
) -> KafkaBroker:
    """A broker whose publishes are durable (acks=all, idempotent) and traced."""
    from faststream.kafka import KafkaBroker
    from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware

    return KafkaBroker(
        # FastStream takes a string as one address: "a:9092,b:9092" must be split (aiokafka splits itself).
        [server.strip() for server in bootstrap.split(",") if server.strip()],
        client_id=f"portico-{service}",
        acks="all",
        enable_idempotence=True,
        graceful_timeout=graceful_timeout,
        security=security.faststream(),
        middlewares=(
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
            KafkaPrometheusMiddleware(registry=registry, app_name=service),
        ),
        logger=logging.getLogger(f"portico.{service}.kafka"),
    )


async def kafka_answers(bootstrap: str, timeout: float = 3.0, *, security: KafkaSecurity = PLAINTEXT) -> bool:
    """One metadata round trip with a throwaway client: cheap, and leaves nothing open behind it."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **security.client_kwargs()
    )
    try:
        await client.bootstrap()
    except KafkaError:
        return False
    finally:
        await client.close()
    return True


async def start_with_retry(
    broker: KafkaBroker | None,
    bootstrap: str,
    *,
    first_delay: float = 0.25,
    max_delay: float = 1.0,
    security: KafkaSecurity = PLAINTEXT,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start the broker once Kafka answers, retrying with exponential back-off (until cancelled); with
    no broker, return once Kafka answers. ``prepare`` runs (and is retried with it) just before the start.

    Waiting for a bare metadata round trip first matters: a failed ``broker.start()`` leaves a
    half-built producer behind, so it is only attempted when Kafka is known to be there. The back-off is
    capped at a second: a probe is one refused connection, while a cap of 5 s left the broker backend
    (unready without Kafka) waiting up to 5 s more after Kafka came up at the end of a slow ``make up``.
    """
    delay = first_delay
    while True:
        if await kafka_answers(bootstrap, security=security):
            if broker is None:
                return
            try:
                if prepare is not None:
                    await prepare()
                await broker.start()
            except (KafkaError, TopicCreationError) as exc:
                log.warning("kafka broker start failed", extra={"error": type(exc).__name__})
                await broker.stop()
            else:
                log.info("kafka broker started")
                return
        log.warning("kafka not reachable, retrying", extra={"retry_in_s": delay})
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, max_delay)
