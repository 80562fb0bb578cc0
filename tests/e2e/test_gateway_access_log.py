"""The gateway's access log in the real mesh: its JSON lines, their fields, and no token in them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from harness.accounts import PASSWORD, bearer, register
from harness.mesh import Mesh

pytestmark = pytest.mark.infra

TRACE_ID = uuid.uuid4().hex


def access_lines(mesh: Mesh) -> list[dict[str, Any]]:
    lines = []
    for text in mesh.procs["gateway"].log().splitlines():
        if text.startswith("{") and '"gateway.access"' in text:
            lines.append(json.loads(text))
    return lines


def line_of(mesh: Mesh, request_id: str) -> dict[str, Any]:
    """The access line of ``request_id`` (written just after its answer left: waited for)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [line for line in access_lines(mesh) if line.get("request_id") == request_id]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no access line for {request_id}")


def test_each_request_has_one_line_with_its_fields_and_no_secret(mesh: Mesh, client: httpx.Client) -> None:
    tenant = f"alog-{uuid.uuid4().hex[:8]}"
    data = register(client, tenant)
    user, auth = data["user"], bearer(data)
    request_id = f"alog-{uuid.uuid4().hex}"
    traceparent = f"00-{TRACE_ID}-{uuid.uuid4().hex[:16]}-01"
    read = client.get(
        f"/api/v1/users/{user['id']}",
        params={"access_token": data["access_token"]},  # a secret in the query: refused, never logged
        headers={**auth, "X-Request-ID": request_id, "traceparent": traceparent},
    )
    assert read.status_code == 400, read.text
    line = line_of(mesh, request_id)
    assert line["logger"] == "gateway.access"
    assert line["level"] == "INFO"
    assert line["service"] == "portico-gateway"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/api/v1/users/{user_id}", 400)
    assert line["trace_id"] == TRACE_ID
    assert line["client_ip"] == "127.0.0.1"
    assert line["user_id"] == user["id"]
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0

    login_id = f"alog-{uuid.uuid4().hex}"
    login = client.post(
        "/api/v1/auth/login",
        json={"tenant_id": tenant, "username": user["username"], "password": PASSWORD},
        headers={"X-Request-ID": login_id},
    )
    assert login.status_code == 200
    assert line_of(mesh, login_id)["user_id"] == ""  # a public route: no token, no user

    unknown_id = f"alog-{uuid.uuid4().hex}"
    assert client.get(f"/no/such/{user['id']}", headers={"X-Request-ID": unknown_id}).status_code == 404
    assert line_of(mesh, unknown_id)["route"] == "unmatched"

    log = mesh.procs["gateway"].log()
    for secret in (
        data["access_token"],
        data["refresh_token"],
        login.json()["data"]["access_token"],
        PASSWORD,
    ):
        assert secret not in log
