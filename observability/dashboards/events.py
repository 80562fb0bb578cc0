"""Events: the transactional outboxes and their relays, Kafka publishing and consuming (Portico's own
counters and FastStream's), consumer lag, and the broker backend's subscriptions."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from observability.dashboards.panels import base, graph, quantile, query, rate, row, single

UID = "portico-events"
TITLE = "Portico / Events"


def dashboard() -> Dashboard:
    return (
        base(
            UID, TITLE, "Outbox → Kafka → consumers: backlog, publish and consume rates, lag, broker streams."
        )
        .with_row(row("Overview"))
        .with_panel(
            single(
                "Outbox backlog",
                "Events written but not yet published, all outboxes.",
                "short",
                query("sum(portico_outbox_pending)"),
            )
        )
        .with_panel(
            single(
                "Oldest pending event",
                "Age of the oldest unpublished event (alert above 1 min).",
                "s",
                query("max(portico_outbox_oldest_pending_age_seconds)"),
            )
        )
        .with_panel(
            single(
                "Consumer lag",
                "Records behind the partitions' ends, all consumer groups (alert above 1000).",
                "short",
                query("sum(portico_kafka_consumer_lag)"),
            )
        )
        .with_panel(
            single(
                "Open subscriptions",
                "Broker subscriptions holding a Kafka consumer (each an SSE/NDJSON stream).",
                "short",
                query("sum(portico_broker_subscriptions_open)"),
            )
        )
        .with_row(row("Outbox relays"))
        .with_panel(
            graph(
                "Outbox backlog",
                "Events not yet published, by outbox table.",
                "short",
                query("sum by (service, outbox) (portico_outbox_pending)", "{{outbox}}"),
            )
        )
        .with_panel(
            graph(
                "Oldest pending event",
                "Age of the oldest unpublished event by outbox; 0 when none is pending.",
                "s",
                query("max by (service, outbox) (portico_outbox_oldest_pending_age_seconds)", "{{outbox}}"),
            )
        )
        .with_panel(
            graph(
                "Published",
                "Events per second the relays published to Kafka and marked, by outbox and topic.",
                "ops",
                query(rate("portico_outbox_published_total", by="outbox, topic"), "{{outbox}} → {{topic}}"),
            )
        )
        .with_panel(
            graph(
                "Publish failures",
                "Events per second a relay round failed to publish (they stay pending and are retried).",
                "ops",
                query(rate("portico_outbox_publish_failures_total", by="service, outbox"), "{{outbox}}"),
            )
        )
        .with_row(row("Consumers"))
        .with_panel(
            graph(
                "Consumed by outcome",
                "Events per second each consumer group received, by outcome (applied, skipped duplicate …).",
                "ops",
                query(
                    rate("portico_events_consumed_total", by="group, topic, outcome"),
                    "{{group}} {{topic}} {{outcome}}",
                ),
                width=24,
            )
        )
        .with_panel(
            graph(
                "Consumer lag",
                "Records behind the end of each topic, by consumer group.",
                "short",
                query("sum by (group, topic) (portico_kafka_consumer_lag)", "{{group}} {{topic}}"),
            )
        )
        .with_panel(
            graph(
                "Lag refresh errors",
                "Rounds per second the lag could not be read from Kafka (the last values stay shown).",
                "ops",
                query(rate("portico_kafka_consumer_lag_errors_total", by="group"), "{{group}}"),
            )
        )
        .with_row(row("Kafka (FastStream)"))
        .with_panel(
            graph(
                "Kafka publishes",
                "Messages per second published through FastStream, by process, topic and status.",
                "ops",
                query(
                    rate("faststream_published_messages_total", by="service, destination, status"),
                    "{{service}} → {{destination}} {{status}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Kafka publish latency",
                "95th percentile of publish durations (until Kafka acknowledged: acks=all).",
                "s",
                query(
                    quantile(
                        0.95,
                        "faststream_published_messages_duration_seconds_bucket",
                        by="service, destination",
                    ),
                    "{{service}} → {{destination}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Kafka messages handled",
                "Messages per second FastStream subscribers processed, by handler and status.",
                "ops",
                query(
                    rate("faststream_received_processed_messages_total", by="service, handler, status"),
                    "{{service}} {{handler}} {{status}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Kafka handling latency",
                "95th percentile of the time FastStream subscribers took per message.",
                "s",
                query(
                    quantile(
                        0.95,
                        "faststream_received_processed_messages_duration_seconds_bucket",
                        by="service, handler",
                    ),
                    "{{service}} {{handler}}",
                ),
            )
        )
        .with_row(row("Broker backend"))
        .with_panel(
            graph(
                "Subscriptions",
                "Open subscriptions, and subscriptions per second refused by a limit (process or tenant).",
                "short",
                query("sum by (service) (portico_broker_subscriptions_open)", "open {{service}}"),
                # Refusals only get a series with the first one: 0 until then, not "no data".
                query(
                    rate("portico_broker_subscriptions_refused_total", by="limit") + " or on() vector(0)",
                    "refused {{limit}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Messages",
                "Messages per second published to tenant topics, fetched from Kafka, delivered to clients.",
                "ops",
                query(rate("portico_broker_messages_published_total"), "published"),
                query(rate("portico_broker_records_fetched_total"), "fetched"),
                query(rate("portico_broker_messages_delivered_total"), "delivered"),
                query(rate("portico_broker_topics_created_total"), "topics created"),
            )
        )
    )
