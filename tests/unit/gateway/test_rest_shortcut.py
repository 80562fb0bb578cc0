"""REST paths go straight to the dispatcher; every other path is routed as Starlette routes it (the
operations routes, their 405s and trailing-slash redirects)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.rest_shortcut import rest_shortcut
from harness.gateway import offline_settings


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(offline_settings(ready_timeout=0.3))) as test_client:
        yield test_client


def test_a_rest_path_is_dispatched(client: TestClient) -> None:
    matched = client.get("/api/v1/users/0b7c9a4e-5d1f-4c1e-9a7b-3f2e1d0c9b8a")
    assert matched.status_code == 401  # the dispatcher matched the route and asked for a token
    assert matched.json()["error"]["request_id"] == matched.headers["x-request-id"]
    unknown = client.get("/nope/")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "NOT_FOUND"


def test_operations_paths_are_routed_as_before(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    redirect = client.get("/health/", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/health")
    assert client.post("/metrics").status_code == 405
    assert client.get("/healthz").status_code == 404  # not an operations route: the dispatcher's 404
    assert client.get("/docs/assets/nothing-here").status_code == 404


def test_no_shortcut_when_a_route_starts_with_a_parameter() -> None:
    async def hello(_: object) -> PlainTextResponse:
        return PlainTextResponse("hi")

    router = Router(routes=[Route("/{anything}/x", hello)])
    assert rest_shortcut(router) == router.app
    plain = Router(routes=[Route("/health", hello)])
    assert rest_shortcut(plain) != plain.app
