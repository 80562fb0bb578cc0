"""The committed AsyncAPI document is what the code generates, and it describes every channel of the
registry with its event types, headers and the envelope's fields (read from the protobuf descriptor)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from backends.channels import CHANNELS
from infra.paths import REPO_ROOT
from meshkit.events.asyncapi import asyncapi_document
from stubs.events.v1 import events_pb2

ROOT = REPO_ROOT
SCRIPT = ROOT / "scripts" / "gen_asyncapi.py"
COMMITTED = ROOT / "docs" / "asyncapi" / "asyncapi.json"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_asyncapi", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_document_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_on_a_stale_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _script()
    stale = tmp_path / "asyncapi.json"
    stale.write_text(COMMITTED.read_text().replace("user.deleted", "user.removed"))
    monkeypatch.setattr(script, "OUTPUT", stale)
    monkeypatch.setattr(script, "ROOT", tmp_path)
    assert script.main(["--check"]) == 1
    assert script.main([]) == 0  # regenerates it
    assert script.main(["--check"]) == 0
    assert stale.read_text() == COMMITTED.read_text()


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def test_every_channel_is_described_from_the_code() -> None:
    document = json.loads(COMMITTED.read_text())
    assert document == asyncapi_document(CHANNELS)
    assert list(document["channels"]) == [c.topic for c in CHANNELS]
    assert document["defaultContentType"] == "application/x-protobuf"
    oneof = {f.name for f in events_pb2.Event.DESCRIPTOR.oneofs_by_name["entity"].fields}
    envelope = [f.name for f in events_pb2.Event.DESCRIPTOR.fields if f.name not in oneof]
    for channel in CHANNELS:
        assert document["operations"][channel.topic]["action"] == "send"
        ref = document["channels"][channel.topic]["messages"]["Message"]["$ref"]
        message = _resolve(document, ref)
        assert message["contentType"] == "application/x-protobuf"
        headers = message["headers"]["properties"]
        assert headers["event-type"]["enum"] == list(channel.types)
        assert {"content-type", "traceparent"} <= set(headers)
        payload = _resolve(document, message["payload"]["$ref"])
        assert list(payload["properties"]) == [*envelope, channel.entity]
        assert payload["properties"]["type"]["enum"] == list(channel.types)
        assert payload["properties"]["occurred_at"]["format"] == "date-time"
        assert payload["properties"]["event_id"]["description"].startswith("Unique id of the event")
        entity = _resolve(document, payload["properties"][channel.entity]["$ref"])
        message_type = events_pb2.Event.DESCRIPTOR.fields_by_name[channel.entity].message_type
        assert message_type is not None
        assert list(entity["properties"]) == [f.name for f in message_type.fields]
    users = document["components"]["schemas"]["User"]["properties"]
    assert users["roles"] == {
        "description": "Roles of the user, e.g. `user`, `admin`.",
        "items": {"type": "string"},
        "title": "roles",
        "type": "array",
    }
