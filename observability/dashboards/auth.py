"""Auth & security: logins by outcome, lockouts, refresh-token replays, token rejections at the backends
and at the edge, and the Redis checks that fail open."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from observability.dashboards.panels import base, graph, query, rate, row, single

UID = "portico-auth"
TITLE = "Portico / Auth & security"
LOGINS = "portico_auth_logins_total"
REUSE = "portico_auth_refresh_reuse_detected_total"
EDGE_REFUSALS = 'status=~"401|403|429"'


def dashboard() -> Dashboard:
    return (
        base(UID, TITLE, "Who gets in and who is refused: logins, lockouts, token replays and rejections.")
        .with_row(row("Overview"))
        .with_panel(
            single(
                "Failed logins",
                "Login attempts per second refused for bad credentials.",
                "ops",
                query(rate(LOGINS, 'outcome="invalid_credentials"')),
            )
        )
        .with_panel(
            single(
                "Refresh-token replays",
                "Spent refresh tokens presented again in the selected time range (each revokes its login).",
                "short",
                query(f"sum(increase({REUSE}[$__range]))"),
            )
        )
        .with_panel(
            single(
                "Edge refusals",
                "Gateway answers 401, 403 and 429 per second.",
                "reqps",
                query(rate("portico_gateway_requests_total", EDGE_REFUSALS)),
            )
        )
        .with_panel(
            single(
                "Backend token rejections",
                "gRPC calls refused as UNAUTHENTICATED by the backends' token check, per second.",
                "ops",
                query(rate("portico_grpc_auth_rejections_total")),
            )
        )
        .with_row(row("Logins and tokens"))
        .with_panel(
            graph(
                "Logins by outcome",
                "Login attempts per second: succeeded, invalid_credentials, locked, invalid_request.",
                "ops",
                query(rate(LOGINS, by="outcome"), "{{outcome}}"),
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Refresh-token reuse detections",
                "Spent refresh tokens presented again, per second (a few: racing clients; many: theft).",
                "ops",
                query(rate(REUSE), "reuse detected"),
            )
        )
        .with_panel(
            graph(
                "Lockouts and throttle errors",
                "Logins refused by the brute-force lockout, and throttle checks that could not reach Redis "
                "(the attempt is then let through).",
                "ops",
                query(rate(LOGINS, 'outcome="locked"'), "locked out"),
                query(rate("portico_login_throttle_errors_total"), "throttle errors"),
            )
        )
        .with_panel(
            graph(
                "Auth RPC outcomes",
                "Auth backend RPCs per second by method and status code.",
                "reqps",
                query(
                    rate("grpc_server_handled_total", 'service="auth"', "grpc_method, grpc_code"),
                    "{{grpc_method}} {{grpc_code}}",
                ),
            )
        )
        .with_row(row("Rejections"))
        .with_panel(
            graph(
                "Backend token rejections",
                "Calls refused as UNAUTHENTICATED by each backend's token check, by reason (missing, "
                "invalid, revoked).",
                "ops",
                query(
                    rate("portico_grpc_auth_rejections_total", by="service, reason"), "{{service}} {{reason}}"
                ),
            )
        )
        .with_panel(
            graph(
                "Denied RPCs",
                "RPCs per second answered UNAUTHENTICATED or PERMISSION_DENIED, by backend.",
                "reqps",
                query(
                    rate(
                        "grpc_server_handled_total",
                        'grpc_code=~"UNAUTHENTICATED|PERMISSION_DENIED"',
                        "service, grpc_code",
                    ),
                    "{{service}} {{grpc_code}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Revocation check errors",
                "Revocation checks that could not reach Redis (the in-process set decided), per process.",
                "ops",
                query(rate("portico_revocation_check_errors_total", by="service"), "{{service}}"),
            )
        )
        .with_panel(
            graph(
                "Edge refusals by route",
                "Gateway answers per second: 401 (no or bad token), 403 (role, tenant), 429 (rate limit).",
                "reqps",
                query(
                    rate("portico_gateway_requests_total", EDGE_REFUSALS, "status, route"),
                    "{{status}} {{route}}",
                ),
            )
        )
    )
