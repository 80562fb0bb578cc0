"""The broker backend's Prometheus metrics. No label comes from request data (tenants and topics are
unbounded), so cardinality stays fixed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class BrokerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open_subscriptions = Gauge(
            "portico_broker_subscriptions_open",
            "Subscriptions holding a Kafka consumer (it is counted until the consumer has stopped).",
            registry=registry,
        )
        self.refused_subscriptions = Counter(
            "portico_broker_subscriptions_refused_total",
            "Subscriptions refused because a limit was reached, by limit.",
            ["limit"],
            registry=registry,
        )
        self.published = Counter(
            "portico_broker_messages_published_total",
            "Messages acknowledged by Kafka.",
            registry=registry,
        )
        self.fetched = Counter(
            "portico_broker_records_fetched_total",
            "Records subscriptions took from their Kafka consumers.",
            registry=registry,
        )
        self.delivered = Counter(
            "portico_broker_messages_delivered_total",
            "Messages written to subscribers.",
            registry=registry,
        )
        self.topics_created = Counter(
            "portico_broker_topics_created_total",
            "Tenant topics this process created in Kafka.",
            registry=registry,
        )
