"""Hostile request bodies through the real gateway and mesh: JSON nested too deeply, multipart forms with
unknown fields or too many parts. Each is a 400 in the contract's envelope, and the connection it came
on keeps serving."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.accounts import bearer, register
from harness.images import image_bytes
from harness.mesh import Mesh

pytestmark = pytest.mark.infra
JSON = {"Content-Type": "application/json"}
# The refusals under the default PORTICO_GATEWAY_MAX_JSON_DEPTH and PORTICO_GATEWAY_MULTIPART_MAX_PARTS.
TOO_DEEP = "Request body is nested too deeply (at most 32 levels)"
TOO_MANY_PARTS = "The form has more than 16 parts"


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


def test_an_unknown_form_field_is_a_400_naming_it_as_json_does(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    fields = {"title": "hello", "colour": "red"}
    form = [(name, (None, value)) for name, value in fields.items()]
    error = bad_request(client.post("/api/v1/posts", files=form, headers=auth))
    assert error["details"] == [{"field": "colour", "description": "unknown field"}]
    as_json = bad_request(client.post("/api/v1/posts", json=fields, headers=auth))
    assert as_json["details"] == error["details"]


def test_a_form_of_140_parts_is_refused(client: httpx.Client, auth: dict[str, str]) -> None:
    unknown = [("title", (None, "t")), *[(f"x{i}", (None, "v")) for i in range(139)]]
    repeated = [("title", (None, "t"))] * 140  # known fields count too
    for form in (unknown, repeated):
        refused = bad_request(client.post("/api/v1/posts", files=form, headers=auth))
        assert refused["message"] == TOO_MANY_PARTS


def test_a_valid_post_with_an_image_is_still_created(client: httpx.Client, auth: dict[str, str]) -> None:
    png = image_bytes("image/png", size=(8, 8), seed=3)
    created = client.post(
        "/api/v1/posts",
        files=[
            ("title", (None, "with a picture")),
            ("content", (None, "hello")),
            ("image", ("../../../etc/passwd.exe", png, "image/png")),  # the filename is never used
        ],
        headers=auth,
    )
    assert created.status_code == 201, created.text
    image = client.get(created.json()["data"]["image_url"], headers=auth)
    assert (image.content, image.headers["content-type"]) == (png, "image/png")
