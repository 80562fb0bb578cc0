"""CORS by configuration: preflight before token checks and rate limits, simple requests, refused origins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from harness.gateway import offline_settings

ALLOWED = "https://app.example.com"
PROTECTED = "/api/v1/users/me"  # needs a token; an unmatched OPTIONS would be a 405


def _client(cors_origins: str, *, limiter_refuses_all: bool = True) -> TestClient:
    settings = offline_settings(
        # A limiter that would refuse everything, and Redis down with no local fallback: a preflight
        # that reached the limiter could not succeed.
        rate_limit_per_ip="1/hour" if limiter_refuses_all else "100/minute",
        rate_limit_fail_open=not limiter_refuses_all,
        cors_origins=cors_origins,
        cors_max_age=900,
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with _client(f"{ALLOWED}, https://admin.example.com") as test_client:
        yield test_client


def test_preflight_needs_no_token_and_is_not_rate_limited(client: TestClient) -> None:
    for _ in range(3):
        response = client.options(
            PROTECTED,
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, content-type, x-request-id, x-tenant-id",
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED
        methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert methods >= {"GET", "POST", "PATCH", "DELETE"}
        allowed = response.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "x-request-id", "x-tenant-id"):
            assert header in allowed
        assert response.headers["access-control-max-age"] == "900"
        assert "access-control-allow-credentials" not in response.headers
        assert response.headers["x-request-id"]


def test_simple_request_gets_the_origin_and_the_exposed_headers(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert exposed >= {
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "etag",
    }
    # Errors carry the CORS headers too, so a browser app can read the envelope (a limiter that lets
    # the request through: an edge refusal is charged to the IP like any request).
    with _client(ALLOWED, limiter_refuses_all=False) as permissive:
        refused = permissive.get(PROTECTED, headers={"Origin": ALLOWED})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    assert refused.json()["error"]["code"] == "UNAUTHORIZED"


def test_a_disallowed_origin_is_refused_in_the_envelope(client: TestClient) -> None:
    response = client.options(
        PROTECTED,
        headers={
            "Origin": "https://evil.example.net",
            "Access-Control-Request-Method": "GET",
            "X-Request-ID": "cors-1",
        },
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    error = response.json()["error"]
    assert error["code"] == "BAD_REQUEST"
    assert error["request_id"] == "cors-1"
    assert "origin" in error["message"].lower()
    simple = client.get("/health", headers={"Origin": "https://evil.example.net"})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


def test_a_header_outside_the_list_is_refused(client: TestClient) -> None:
    response = client.options(
        PROTECTED,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-internal-secret",
        },
    )
    assert response.status_code == 400
    assert "header" in response.json()["error"]["message"].lower()


def test_cors_is_off_without_origins() -> None:
    # Without CORS an OPTIONS is an ordinary unmatched method, and those are charged to the client's IP:
    # this client's limiter (local, Redis being down) lets it through to its 405.
    with _client("", limiter_refuses_all=False) as client:
        simple = client.get("/health", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in simple.headers
        preflight = client.options(
            PROTECTED, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.status_code == 405  # no CORS: OPTIONS is just a method the route lacks
        assert preflight.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
