"""observability/prometheus, checked by promtool (Debian's `prometheus` package): the scrape config and
the alert rules load, the rules' unit tests pass (synthetic series in, alerts out), the rules use only
metric names the code registers, and the scrape targets are the processes'
real metric ports."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from backends.auth.config import AuthSettings
from backends.broker.config import BrokerSettings
from backends.posts.config import PostsSettings
from backends.users.config import UsersSettings
from gateway.config import GatewaySettings
from infra.paths import REPO_ROOT
from meshkit.config.serve import BackendSettings

ROOT = REPO_ROOT
PROMETHEUS = ROOT / "observability" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
BACKENDS: dict[str, type[BackendSettings]] = {
    "users": UsersSettings,
    "auth": AuthSettings,
    "posts": PostsSettings,
    "broker": BrokerSettings,
}
# Must fire in the rule unit tests, not merely be defined.
UNIT_TESTED = {
    "PorticoGatewayHighErrorRate",
    "PorticoBackendHighErrorRate",
    "PorticoGatewayHighLatencyP99",
    "PorticoKafkaConsumerLagHigh",
    "PorticoOutboxEventsStuck",
    "PorticoEventsBlocked",
    "PorticoRefreshTokenReuseSpike",
    "PorticoProcessUnready",
    "PorticoDependencyDegraded",
}
SERIES = re.compile(r"\b((?:portico|grpc_server)_[a-z0-9_]+|up)\b(?=\s*[{\[)])")

Json = dict[str, Any]


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool (Debian's prometheus package) is installed by `python -m infra install`"
    return subprocess.run(
        [found, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )


@cache
def rules() -> list[Json]:
    groups = [group for path in RULES for group in yaml.safe_load(path.read_text())["groups"]]
    return [cast(Json, rule) for group in groups for rule in group["rules"]]


def registered_metrics() -> set[str]:
    """Exposed series names of every Counter/Gauge/Histogram the Python code registers."""
    names: set[str] = set()
    for package in ("meshkit", "backends", "gateway", "observability"):
        for source in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text(), str(source))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
                    continue
                first = node.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue
                name = first.value
                if node.func.id == "Counter":
                    names.add(name if name.endswith("_total") else f"{name}_total")
                elif node.func.id == "Gauge":
                    names.add(name)
                elif node.func.id == "Histogram":
                    names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_promtool_accepts_the_config_and_the_rule_files_it_loads() -> None:
    result = promtool("check", "config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    # The config names the rules by glob: every rule file in the folder is actually loaded.
    assert f"{len(RULES)} rule files found" in result.stdout


def test_promtool_accepts_the_rules() -> None:
    assert RULES
    result = promtool("check", "rules", *RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests bite: with the reuse threshold raised tenfold, the expected alert no longer fires."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    rules_file = copy / "rules" / "portico-alerts.yml"
    text = rules_file.read_text()
    weakened = text.replace("reuse_detected_total[15m])) > 10\n", "reuse_detected_total[15m])) > 100\n")
    assert weakened != text
    rules_file.write_text(weakened)
    result = promtool("test", "rules", *(copy / "tests" / p.name for p in RULE_TESTS))
    assert result.returncode != 0
    assert "PorticoRefreshTokenReuseSpike" in result.stdout + result.stderr


def test_the_alerts_the_issue_asks_for_are_unit_tested() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts >= UNIT_TESTED
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested >= UNIT_TESTED, UNIT_TESTED - tested


def test_every_alert_has_a_severity_and_a_summary() -> None:
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            assert rule["annotations"]["description"], rule["alert"]


def headings_anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer gives the headings: lower case, spaces to dashes, punctuation out."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_every_alert_links_the_runbook_section_named_after_it() -> None:
    anchors = headings_anchors((ROOT / "docs" / "operations.md").read_text())
    for rule in rules():
        if "alert" in rule:
            url = rule["annotations"].get("runbook_url", "")
            assert url == f"docs/operations.md#{rule['alert'].lower()}", rule["alert"]
            assert url.partition("#")[2] in anchors, (
                f"{rule['alert']}: no section {url} in docs/operations.md"
            )


def test_rules_use_only_metrics_the_code_exports() -> None:
    known = registered_metrics()
    assert "portico_gateway_requests_total" in known  # the scan finds the families at all
    assert "grpc_server_handling_seconds_bucket" in known
    used = {name for rule in rules() for name in SERIES.findall(rule["expr"])} - {"up"}
    assert len(used) >= 8
    unknown = used - known
    assert not unknown, f"rules use metrics nothing exports: {sorted(unknown)}"


def test_grpc_codes_in_rules_are_the_names_the_interceptor_exports() -> None:
    import grpc

    names = {code.name for code in grpc.StatusCode}
    for rule in rules():
        for codes in re.findall(r'grpc_code=~?"([^"]+)"', rule["expr"]):
            for code in codes.split("|"):
                assert code in names, f"{rule.get('alert')}: {code} is not a grpc.StatusCode name"


@pytest.mark.parametrize("service", [*BACKENDS, "gateway"])
def test_each_process_is_scraped_on_its_metrics_port(service: str) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "portico"]
    targets = {group["labels"]["service"]: group["targets"] for group in job["static_configs"]}
    if service == "gateway":
        port = GatewaySettings.model_fields["port"].default
    else:
        port = BACKENDS[service].model_fields["metrics_port"].default
    assert targets[service] == [f"{service}:{port}"]


def test_rule_files_are_loaded_by_the_config() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    loaded = {path for pattern in config["rule_files"] for path in PROMETHEUS.glob(pattern)}
    assert loaded == set(RULES)
