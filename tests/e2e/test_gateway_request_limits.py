"""Hostile request bodies through the real gateway and mesh: JSON nested too deeply is a 400 in the
contract's envelope, and the connection it came on keeps serving."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.accounts import bearer, register
from harness.mesh import Mesh

pytestmark = pytest.mark.infra
JSON = {"Content-Type": "application/json"}
# The refusal under the default PORTICO_GATEWAY_MAX_JSON_DEPTH.
TOO_DEEP = "Request body is nested too deeply (at most 32 levels)"


@pytest.fixture
def client(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as http:
        yield http


@pytest.fixture
def auth(client: httpx.Client) -> dict[str, str]:
    return bearer(register(client, f"limits-{uuid.uuid4().hex[:8]}"))


def bad_request(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error["status_code"]) == ("BAD_REQUEST", 400)
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def login_body(arrays: int) -> bytes:
    """A login whose username is ``arrays`` nested arrays: the body nests ``arrays + 1`` levels."""
    return b'{"username": ' + b"[" * arrays + b"]" * arrays + b', "password": "x"}'


def test_a_hundred_thousand_brackets_are_a_400_and_the_connection_serves_on(client: httpx.Client) -> None:
    error = bad_request(client.post("/api/v1/auth/login", content=b"[" * 100_000, headers=JSON))
    assert error["message"] == TOO_DEEP
    assert client.get("/health").status_code == 200  # same keep-alive connection


def test_json_one_level_past_the_limit_is_refused_and_at_the_limit_is_parsed(client: httpx.Client) -> None:
    over = bad_request(client.post("/api/v1/auth/login", content=login_body(32), headers=JSON))
    assert (over["message"], over.get("details")) == (TOO_DEEP, None)
    # At the limit the body is parsed: what is refused then is the field, for not being a string.
    at_limit = bad_request(client.post("/api/v1/auth/login", content=login_body(31), headers=JSON))
    assert [d["field"] for d in at_limit["details"]] == ["username"]


def test_a_deep_message_to_the_broker_is_refused(client: httpx.Client, auth: dict[str, str]) -> None:
    deep = b'{"message": ' + b"[" * 50_000 + b"}"
    error = bad_request(client.post("/api/v1/topics/t/messages", content=deep, headers={**auth, **JSON}))
    assert error["message"] == TOO_DEEP
