"""The FastStream Kafka broker every backend runs inside its own asyncio loop.

Built with tracing (``traceparent`` in headers) and Prometheus middlewares, an idempotent producer with
``acks=all``, and started in the background with back-off so that a backend comes up (NOT_SERVING)
while Kafka is still down and turns SERVING once it answers.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


def build_broker(
    bootstrap: str,
    *,
    service: str,
    tracer_provider: TracerProvider | None,
    registry: CollectorRegistry,
    graceful_timeout: float = 8.0,
) -> KafkaBroker:
    """A broker whose publishes are durable (acks=all, idempotent) and traced."""
    return KafkaBroker(
        bootstrap,
        client_id=f"portico-{service}",
        acks="all",
        enable_idempotence=True,
        graceful_timeout=graceful_timeout,
        middlewares=(
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
            KafkaPrometheusMiddleware(registry=registry, app_name=service),
        ),
        logger=logging.getLogger(f"portico.{service}.kafka"),
    )


async def kafka_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """One metadata round trip with a throwaway client: cheap, and leaves nothing open behind it."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await client.bootstrap()
    except KafkaError:
        return False
    finally:
        await client.close()
    return True


async def start_with_retry(
    broker: KafkaBroker, bootstrap: str, *, first_delay: float = 0.25, max_delay: float = 5.0
) -> None:
    """Start the broker once Kafka answers, retrying with exponential back-off (until cancelled).

    Waiting for a bare metadata round trip first matters: a failed ``broker.start()`` leaves a
    half-built producer behind, so it is only attempted when Kafka is known to be there.
    """
    delay = first_delay
    while True:
        if await kafka_answers(bootstrap):
            try:
                await broker.start()
            except KafkaError as exc:
                log.warning("kafka broker start failed", extra={"error": type(exc).__name__})
                await broker.stop()
            else:
                log.info("kafka broker started")
                return
        log.warning("kafka not reachable, retrying", extra={"retry_in_s": delay})
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, max_delay)
