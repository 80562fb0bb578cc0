"""Every query of every generated dashboard returns data from a real Prometheus scraping the running mesh.

Debian's `prometheus` scrapes the mesh with the repository's `portico` job (its `service` labels, only the
targets moved), traffic goes through the gateway, and each panel target — with Grafana's variables
substituted as Grafana would — is evaluated with `/api/v1/query_range`. A panel that would show "No data"
in production (a misspelt metric, a label that does not exist, a metric not exported) fails here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from harness.mesh import Mesh
from harness.servers.prometheus import Prometheus, mesh_config, running_prometheus, wait_for_scrapes
from harness.traffic import drive
from observability.dashboards.render import OUTPUT

pytestmark = pytest.mark.infra

# Grafana's built-in interval variables, as Grafana would set them for a few minutes' range.
BUILTINS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
METRIC = re.compile(r"\b(?:portico_|grpc_server_|faststream_|process_)[a-z0-9_]+\b")
LABEL_VALUES = re.compile(r"label_values\((?P<metric>\w+), *(?P<label>\w+)\)")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")
QUERY_DEADLINE = 60.0  # events go through the outbox relay and Kafka before their consumers count them


@dataclass(frozen=True)
class Target:
    where: str
    expr: str
    exemplar: bool


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(OUTPUT.glob("*.json"))]


def promql(expr: str, variables: list[str]) -> str:
    """The query Grafana would send with every variable at "All" (the regex `.*`)."""
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    for name in variables:
        expr = expr.replace(f"${{{name}}}", ".*").replace(f"${name}", ".*")
    assert "$" not in expr, f"an unknown variable is left in {expr!r}"
    return expr


def targets() -> list[Target]:
    found = []
    for model in dashboards():
        variables = [v["name"] for v in model.get("templating", {}).get("list", [])]
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                where = f"{model['uid']} / {panel['title']} / {target['refId']}"
                found.append(Target(where, promql(target["expr"], variables), bool(target.get("exemplar"))))
    return found


def variable_queries() -> list[tuple[str, str, str]]:
    found = []
    for model in dashboards():
        for variable in model.get("templating", {}).get("list", []):
            match = LABEL_VALUES.fullmatch(variable["query"])
            assert match, f"{model['uid']} ${variable['name']}: only label_values(metric, label) is checked"
            found.append((f"{model['uid']} ${variable['name']}", match["metric"], match["label"]))
    return found


@pytest.fixture(scope="module")
def prometheus(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with running_prometheus(mesh_config(mesh), tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(scope="module")
def since(mesh: Mesh, prometheus: Prometheus) -> float:
    """Once every target has been scraped, the traffic; the start of the range the queries look at."""
    start = wait_for_scrapes(prometheus) - 5
    drive(mesh)
    return start


def empty_queries(server: Prometheus, queries: list[Target], since: float) -> list[Target]:
    now = time.time()
    return [t for t in queries if not server.query_range(t.expr, since, now, step=2)]


def known(name: str, names: set[str]) -> bool:
    return name in names or any(name.endswith(s) and name.removesuffix(s) in names for s in SUFFIXES)


def test_every_panel_query_returns_data(prometheus: Prometheus, since: float) -> None:
    queries = targets()
    assert len(queries) >= 40

    deadline = time.monotonic() + QUERY_DEADLINE
    empty = empty_queries(prometheus, queries, since)
    while empty and time.monotonic() < deadline:
        time.sleep(2)
        empty = empty_queries(prometheus, empty, since)
    # A fallback such as `or on() vector(0)` must not hide a metric that is not exported at all.
    names = prometheus.metric_names()
    unknown = sorted({(t.where, m) for t in queries for m in METRIC.findall(t.expr) if not known(m, names)})
    problems = [f"  no data: {t.where}: {t.expr}" for t in empty]
    problems += [f"  no target exports {metric}: {where}" for where, metric in unknown]
    assert not problems, "dashboard queries that fail:\n" + "\n".join(problems)

    for where, metric, label in variable_queries():
        values = prometheus.get(f"/api/v1/label/{label}/values", **{"match[]": metric})
        assert values, f"{where}: no values of {label} on {metric}"


def test_latency_panels_carry_trace_exemplars(prometheus: Prometheus, since: float) -> None:
    """The latency queries ask for exemplars: the gateway's and the backends' histograms have them."""
    with_exemplars = [t for t in targets() if t.exemplar]
    assert with_exemplars
    missing = with_exemplars
    deadline = time.monotonic() + 20
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = [t for t in missing if not prometheus.exemplars(t.expr, since, time.time())]
    assert not missing, "no exemplars:\n" + "\n".join(f"  {t.where}: {t.expr}" for t in missing)
    sample = prometheus.exemplars(with_exemplars[0].expr, since, time.time())[0]["exemplars"][0]
    assert re.fullmatch(r"[0-9a-f]{32}", sample["labels"]["trace_id"])


def test_the_scrape_configuration_covers_the_mesh(mesh: Mesh, prometheus: Prometheus) -> None:
    wait_for_scrapes(prometheus)
    assert prometheus.targets_up() == dict.fromkeys(("gateway", *mesh.metrics_ports), "up")
