"""Services: gRPC RED (rate, errors, duration) per backend and method, in-flight calls, the users cache and
the processes themselves."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from observability.dashboards.panels import (
    RATE,
    SERVER_ERROR_CODES,
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

UID = "portico-services"
TITLE = "Portico / Services"
HANDLED = "grpc_server_handled_total"
HANDLING = "grpc_server_handling_seconds_bucket"
SERVICE = 'service=~"$service"'
UNARY = f'{SERVICE}, grpc_type="unary"'
SERVER_ERRORS = f'{SERVICE}, grpc_code=~"{SERVER_ERROR_CODES}"'


def dashboard() -> Dashboard:
    return (
        base(
            UID,
            TITLE,
            "The four backends: gRPC calls per service and method, errors, latency, cache, processes.",
        )
        .with_variable(label_variable("service", "Service", HANDLED))
        .with_row(row("Overview"))
        .with_panel(single("RPCs", "Completed RPCs per second.", "reqps", query(rate(HANDLED, SERVICE))))
        .with_panel(
            single(
                "Server error ratio",
                f"Share of RPCs ending {SERVER_ERROR_CODES.replace('|', ', ')}.",
                "percentunit",
                query(ratio(HANDLED, SERVER_ERRORS, SERVICE)),
            )
        )
        .with_panel(
            single(
                "p99 latency (unary)",
                "99th percentile of unary RPC durations, all selected services.",
                "s",
                query(quantile(0.99, HANDLING, UNARY)),
            )
        )
        .with_panel(
            single(
                "Targets up",
                "Portico processes Prometheus scraped successfully (gateway included).",
                "short",
                query('sum(up{job="portico"})'),
            )
        )
        .with_row(row("Rate and errors"))
        .with_panel(
            graph(
                "RPCs by service",
                "Completed RPCs per second by backend.",
                "reqps",
                query(rate(HANDLED, SERVICE, "service"), "{{service}}"),
            )
        )
        .with_panel(
            graph(
                "Server error ratio by service",
                "Share of each backend's RPCs that failed on the server side.",
                "percentunit",
                query(ratio(HANDLED, SERVER_ERRORS, SERVICE, "service"), "{{service}}"),
            )
        )
        .with_panel(
            graph(
                "RPCs by method",
                "Completed RPCs per second by gRPC service and method.",
                "reqps",
                query(
                    rate(HANDLED, SERVICE, "grpc_service, grpc_method"), "{{grpc_service}}/{{grpc_method}}"
                ),
                width=24,
            )
        )
        .with_panel(
            graph(
                "Non-OK codes by method",
                "RPCs per second that ended with a status other than OK, client errors included.",
                "reqps",
                query(
                    rate(HANDLED, f'{SERVICE}, grpc_code!="OK"', "grpc_method, grpc_code"),
                    "{{grpc_method}} {{grpc_code}}",
                ),
                width=24,
            )
        )
        .with_row(row("Duration and saturation"))
        .with_panel(
            graph(
                "Unary latency by service",
                "Quantiles of unary RPC durations; the dots are exemplars linking to traces.",
                "s",
                query(quantile(0.5, HANDLING, UNARY, "service"), "p50 {{service}}", exemplar=True),
                query(quantile(0.95, HANDLING, UNARY, "service"), "p95 {{service}}", exemplar=True),
                query(quantile(0.99, HANDLING, UNARY, "service"), "p99 {{service}}", exemplar=True),
            )
        )
        .with_panel(
            graph(
                "p95 latency by method",
                "95th percentile of RPC durations by method (server streams last as long as the client).",
                "s",
                query(
                    quantile(0.95, HANDLING, SERVICE, "grpc_service, grpc_method"),
                    "{{grpc_service}}/{{grpc_method}}",
                    exemplar=True,
                ),
            )
        )
        .with_panel(
            graph(
                "In flight",
                "RPCs being handled right now (open server streams included).",
                "short",
                query(
                    f"sum by (service, grpc_method) (grpc_server_in_flight{{{SERVICE}}})",
                    "{{service}} {{grpc_method}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Users cache hit ratio",
                "Share of GetUser/GetMe lookups the Redis cache answered.",
                "percentunit",
                query(
                    ratio("portico_cache_requests_total", 'result="hit"', by="cache"), "hit ratio {{cache}}"
                ),
            )
        )
        .with_panel(
            graph(
                "Users cache lookups",
                "Cache lookups per second by result: hit, miss (read from the database), bypass.",
                "ops",
                query(rate("portico_cache_requests_total", by="cache, result"), "{{cache}} {{result}}"),
                stacked=True,
            )
        )
        .with_row(row("Processes"))
        .with_panel(
            graph(
                "CPU",
                "CPU seconds per second of each Portico process.",
                "percentunit",
                query(
                    f'sum by (service) (rate(process_cpu_seconds_total{{job="portico", {SERVICE}}}[{RATE}]))',
                    "{{service}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Resident memory",
                "Resident set size of each Portico process.",
                "bytes",
                query(
                    f'sum by (service) (process_resident_memory_bytes{{job="portico", {SERVICE}}})',
                    "{{service}}",
                ),
            )
        )
    )
