"""Dashboards to JSON, deterministically: the same code gives the same bytes (keys sorted, panel ids
numbered in order), so the committed files can be compared with the code."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

OUTPUT = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"


def to_dict(builder: Dashboard) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    # The builders leave every id at 0; Grafana needs them unique within a dashboard (links, repeats).
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
    return model


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def files(builders: Iterable[Dashboard]) -> dict[str, str]:
    """File name → content for every dashboard."""
    out: dict[str, str] = {}
    for builder in builders:
        model = to_dict(builder)
        name = f"{model['uid']}.json"
        if name in out:
            raise ValueError(f"two dashboards have the uid {model['uid']!r}")
        out[name] = render(model)
    return out


def stale(expected: dict[str, str], directory: Path = OUTPUT) -> list[str]:
    """Names of the files that differ from ``expected``, are missing, or are left over."""
    present = {path.name: path.read_text(encoding="utf-8") for path in directory.glob("*.json")}
    return sorted(
        name for name in expected.keys() | present.keys() if expected.get(name) != present.get(name)
    )


def write(expected: dict[str, str], directory: Path = OUTPUT) -> list[str]:
    """Bring ``directory`` in line with ``expected`` (leftover dashboards removed); the names changed."""
    changed = stale(expected, directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in changed:
        path = directory / name
        if name in expected:
            path.write_text(expected[name], encoding="utf-8")
        else:
            path.unlink()
    return changed
