"""Shared pieces of the dashboards: the data source, Prometheus queries, panels and PromQL helpers.

Every panel and every query names the provisioned data source (uid ``prometheus``, see
``observability/grafana/provisioning/datasources/portico.yml``), so a dashboard never depends on which
data source happens to be the default.
"""

from __future__ import annotations

from typing import TypeVar

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models.dashboard import DashboardLinkType, DataSourceRef, VariableRefresh

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
TAG = "portico"
# Grafana picks a window of at least four scrape intervals for each zoom level (the data source's
# timeInterval is the scrape interval), so rates never come out empty when zoomed in.
RATE = "$__rate_interval"
# Server-side gRPC failures, as in the alert rules; client errors (NOT_FOUND, UNAUTHENTICATED …) are not.
SERVER_ERROR_CODES = "UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED|UNIMPLEMENTED"
OPS_ROUTES = "/health|/ready|/metrics"

P = TypeVar("P", timeseries.Panel, stat.Panel)


def query(expr: str, legend: str = "", *, exemplar: bool = False) -> prometheus.Dataquery:
    """A range query; ``exemplar`` asks Prometheus for the trace ids attached to histogram buckets."""
    target = prometheus.Dataquery().expr(expr).datasource(DATASOURCE).range()
    if legend:
        target = target.legend_format(legend)
    return target.exemplar(exemplar)


def _targets(panel: P, targets: tuple[prometheus.Dataquery, ...]) -> P:
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        panel = panel.with_target(target.ref_id(ref))
    return panel


def graph(
    title: str,
    description: str,
    unit: str,
    *targets: prometheus.Dataquery,
    width: int = 12,
    stacked: bool = False,
) -> timeseries.Panel:
    """A time series panel with its legend as a table (last and max), so long label sets stay readable."""
    legend = (
        common.VizLegendOptions()
        .display_mode(common_models.LegendDisplayMode.TABLE)
        .placement(common_models.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(10)
        .show_points(common_models.VisibilityMode.NEVER)
        .legend(legend)
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.MULTI)
            .sort(common_models.SortOrder.DESCENDING)
        )
    )
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(common_models.StackingMode.NORMAL)).fill_opacity(
            40
        )
    return _targets(panel, targets)


def single(
    title: str, description: str, unit: str, target: prometheus.Dataquery, *, width: int = 6
) -> stat.Panel:
    """A stat panel showing the last value of one query (with its sparkline)."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .graph_mode(common_models.BigValueGraphMode.AREA)
    )
    return _targets(panel, (target,))


def row(title: str) -> dashboard.Row:
    return dashboard.Row(title)


def base(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """A read-only dashboard (provisioned from code) linked to the other Portico dashboards."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .readonly()
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard.DashboardLink("Portico")
            .type(DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(False)
        )
    )


def label_variable(name: str, label: str, metric: str) -> dashboard.QueryVariable:
    """A multi-value variable over one label's values, "All" meaning the regex ``.*``."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dashboard_models.VariableOption(selected=True, text="All", value="$__all"))
    )


# --- PromQL ----------------------------------------------------------------------------------------


def rate(metric: str, selector: str = "", by: str = "") -> str:
    """``sum [by (…)] (rate(metric{selector}[$__rate_interval]))``."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{{{selector}}}[{RATE}]))"


def ratio(metric: str, part: str, whole: str = "", by: str = "") -> str:
    """The share of ``metric{part}`` in ``metric{whole}``, 0 (not "no data") while the part has no series:
    an error counter's labelled series only appear with the first error."""
    total = rate(metric, whole, by)
    on = f"({by})" if by else "()"
    return f"({rate(metric, part, by)} or on{on} (0 * {total}))\n/\n{total}"


def quantile(q: float, bucket_metric: str, selector: str = "", by: str = "") -> str:
    grouping = ", ".join(label for label in (by, "le") if label)
    return f"histogram_quantile({q}, sum by ({grouping}) (rate({bucket_metric}{{{selector}}}[{RATE}])))"
