"""Portico's Grafana dashboards as code (grafana-foundation-sdk), one module per dashboard.

``python -m observability.dashboards`` writes them to ``observability/grafana/dashboards/<uid>.json``,
which Grafana provisions; ``--check`` fails when the committed files differ from the code.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from observability.dashboards import auth, events, gateway, services

DASHBOARDS: tuple[Callable[[], Dashboard], ...] = (
    gateway.dashboard,
    services.dashboard,
    events.dashboard,
    auth.dashboard,
)
