"""Prometheus metrics of the outbox relays, labelled by outbox table; one set of families per registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from meshkit.registries import per_registry

__all__ = ["RelayMetrics", "relay_metrics"]


@dataclass(frozen=True)
class RelayMetrics:
    published: Counter
    failures: Counter
    pending: Gauge
    oldest_age: Gauge


@per_registry
def _families(registry: CollectorRegistry) -> RelayMetrics:
    return RelayMetrics(
        published=Counter(
            "portico_outbox_published_total",
            "Outbox events published to Kafka and marked.",
            ("outbox", "topic"),
            registry=registry,
        ),
        failures=Counter(
            "portico_outbox_publish_failures_total",
            "Outbox events a relay round failed to publish (they stay pending and are retried).",
            ("outbox",),
            registry=registry,
        ),
        pending=Gauge(
            "portico_outbox_pending",
            "Outbox events not yet published (the backlog).",
            ("outbox",),
            registry=registry,
        ),
        oldest_age=Gauge(
            "portico_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox event; 0 when none is pending.",
            ("outbox",),
            registry=registry,
        ),
    )


def relay_metrics(registry: CollectorRegistry, outbox: str) -> RelayMetrics:
    """The families in ``registry`` (created once, so several relays may share a registry)."""
    metrics = _families(registry)
    # Export zeros from the start, so an alert on the backlog sees the series before the first event.
    metrics.pending.labels(outbox)
    metrics.oldest_age.labels(outbox)
    metrics.failures.labels(outbox)
    return metrics
