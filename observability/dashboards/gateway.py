"""Gateway: traffic by route and status, errors, latency (with trace exemplars), rate limits, upstreams."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from observability.dashboards.panels import (
    OPS_ROUTES,
    base,
    graph,
    label_variable,
    quantile,
    query,
    rate,
    ratio,
    row,
    single,
)

UID = "portico-gateway"
TITLE = "Portico / Gateway"
REQUESTS = "portico_gateway_requests_total"
DURATION = "portico_gateway_request_duration_seconds_bucket"
ROUTES = 'route=~"$route"'
API = f'{ROUTES}, route!~"{OPS_ROUTES}"'
STREAM_ROUTE = "/api/v1/topics/{topic}/messages"


def latency(q: float, by: str = "") -> str:
    """A latency quantile without the message streams (they last as long as the client listens): every
    non-GET request, or a GET of any other route — the same selection as the p99 alert."""
    grouping = ", ".join(label for label in (by, "le") if label)
    window = "[$__rate_interval]"
    return (
        f"histogram_quantile({q}, sum by ({grouping}) (\n"
        f'  rate({DURATION}{{{ROUTES}, method!="GET"}}{window})\n'
        f"  or\n"
        f'  rate({DURATION}{{{ROUTES}, route!="{STREAM_ROUTE}"}}{window})\n'
        f"))"
    )


def dashboard() -> Dashboard:
    return (
        base(UID, TITLE, "The edge: requests by route template and status, latency, rate limits, backends.")
        .with_variable(label_variable("route", "Route", REQUESTS))
        .with_row(row("Overview"))
        .with_panel(
            single(
                "Requests",
                "API requests per second (operations endpoints left out).",
                "reqps",
                query(rate(REQUESTS, API)),
            )
        )
        .with_panel(
            single(
                "5xx ratio",
                "Share of API requests answered with a server error.",
                "percentunit",
                query(ratio(REQUESTS, f'{API}, status=~"5.."', API)),
            )
        )
        .with_panel(
            single(
                "p99 latency",
                "99th percentile of request durations (streams left out).",
                "s",
                query(latency(0.99)),
            )
        )
        .with_panel(
            single(
                "Dependencies up",
                "Gateway dependencies that answered the last /ready probe (route table, backends, Redis, "
                "Kafka); only the route table makes it unready, the others degrade it.",
                "short",
                query('sum(min by (dependency) (portico_dependency_up{process="gateway"}))'),
            )
        )
        .with_row(row("Traffic"))
        .with_panel(
            graph(
                "Requests by route",
                "Requests per second by method and route template (never the raw path).",
                "reqps",
                query(rate(REQUESTS, ROUTES, "method, route"), "{{method}} {{route}}"),
            )
        )
        .with_panel(
            graph(
                "Requests by status",
                "Requests per second by HTTP status.",
                "reqps",
                query(rate(REQUESTS, ROUTES, "status"), "{{status}}"),
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Error ratio",
                "Share of API requests answered 5xx (server) and 4xx (client).",
                "percentunit",
                query(ratio(REQUESTS, f'{API}, status=~"5.."', API), "5xx"),
                query(ratio(REQUESTS, f'{API}, status=~"4.."', API), "4xx"),
            )
        )
        .with_panel(
            graph(
                "Errors by route",
                "4xx and 5xx answers per second by route and status.",
                "reqps",
                query(rate(REQUESTS, f'{ROUTES}, status=~"[45].."', "route, status"), "{{status}} {{route}}"),
            )
        )
        .with_row(row("Latency"))
        .with_panel(
            graph(
                "Latency",
                "Request duration quantiles (streams left out); the dots are exemplars linking to traces.",
                "s",
                query(latency(0.5), "p50", exemplar=True),
                query(latency(0.95), "p95", exemplar=True),
                query(latency(0.99), "p99", exemplar=True),
            )
        )
        .with_panel(
            graph(
                "p95 latency by route",
                "95th percentile of request durations by route template.",
                "s",
                query(
                    quantile(0.95, DURATION, ROUTES, "method, route"), "{{method}} {{route}}", exemplar=True
                ),
            )
        )
        .with_row(row("Rate limits and upstreams"))
        .with_panel(
            graph(
                "Rate-limit decisions",
                "Decisions per second by limit (ip, user, login) and outcome; refused ones answer 429.",
                "ops",
                query(
                    rate("portico_gateway_rate_limit_decisions_total", by="limit, outcome"),
                    "{{limit}} {{outcome}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Rate-limit fallbacks",
                "Decisions made in process because Redis was unreachable (limits become per replica).",
                "ops",
                query(rate("portico_gateway_rate_limit_fallbacks_total", by="service"), "{{service}}"),
            )
        )
        .with_panel(
            graph(
                "Upstream errors",
                "Failed backend calls per second by backend and gRPC status code.",
                "ops",
                query(
                    rate("portico_gateway_upstream_errors_total", by="backend, grpc_code"),
                    "{{backend}} {{grpc_code}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Upstream retries",
                "Idempotent reads retried after UNAVAILABLE, per second by backend.",
                "ops",
                query(rate("portico_gateway_upstream_retries_total", by="backend"), "{{backend}}"),
            )
        )
    )
