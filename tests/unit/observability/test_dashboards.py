"""The Grafana dashboards: the committed JSON is what the code generates, and each dashboard is complete
(panels with queries on the provisioned data source, unique uids, the four required dashboards)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.paths import REPO_ROOT
from observability.dashboards import DASHBOARDS
from observability.dashboards.__main__ import main
from observability.dashboards.render import OUTPUT, files, stale, write

ROOT = REPO_ROOT
REQUIRED_TITLES = {
    "Portico / Gateway",
    "Portico / Services",
    "Portico / Events",
    "Portico / Auth & security",
}
PROMETHEUS_UID = "prometheus"


def committed() -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(OUTPUT.glob("*.json"))]


def test_committed_dashboards_are_the_generated_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().out


def test_generation_is_deterministic() -> None:
    assert files(build() for build in DASHBOARDS) == files(build() for build in DASHBOARDS)


def test_check_reports_stale_missing_and_leftover_files(tmp_path: Path) -> None:
    expected = {"a.json": "{}\n", "b.json": "[]\n"}
    (tmp_path / "b.json").write_text("old\n", encoding="utf-8")
    (tmp_path / "gone.json").write_text("{}\n", encoding="utf-8")
    assert stale(expected, tmp_path) == ["a.json", "b.json", "gone.json"]
    assert write(expected, tmp_path) == ["a.json", "b.json", "gone.json"]
    assert stale(expected, tmp_path) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_the_required_dashboards_exist_with_unique_uids() -> None:
    dashboards = committed()
    assert len(dashboards) >= 4
    assert {d["title"] for d in dashboards} >= REQUIRED_TITLES
    uids = [d["uid"] for d in dashboards]
    assert len(set(uids)) == len(uids)
    for path in OUTPUT.glob("*.json"):
        assert path.name == f"{json.loads(path.read_text(encoding='utf-8'))['uid']}.json"


@pytest.mark.parametrize("model", committed(), ids=lambda model: str(model["uid"]))
def test_every_panel_queries_the_provisioned_prometheus(model: dict[str, Any]) -> None:
    panels = [p for p in model["panels"] if p["type"] != "row"]
    assert panels, f"{model['uid']} has no panels"
    ids = [p["id"] for p in model["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in panels:
        where = f"{model['uid']} / {panel['title']}"
        assert panel["datasource"] == {"type": "prometheus", "uid": PROMETHEUS_UID}, where
        assert panel["targets"], f"{where} has no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), where
        assert all(ref_ids), where
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": PROMETHEUS_UID}, where
            assert target["expr"].strip(), where
    for variable in model.get("templating", {}).get("list", []):
        assert variable["datasource"]["uid"] == PROMETHEUS_UID


def test_provisioning_matches_the_files_and_compose() -> None:
    grafana = ROOT / "observability" / "grafana"
    sources = yaml.safe_load((grafana / "provisioning" / "datasources" / "portico.yml").read_text())
    assert PROMETHEUS_UID in {source["uid"] for source in sources["datasources"]}
    providers = yaml.safe_load((grafana / "provisioning" / "dashboards" / "portico.yml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./observability/grafana/dashboards:{provider['options']['path']}:ro" in mounts
