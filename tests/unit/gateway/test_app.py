"""Gateway operations endpoints: /health, /ready, /metrics, the error envelope and X-Request-ID."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from harness.gateway import offline_settings


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = offline_settings(
        ready_timeout=0.5,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_health_is_always_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_ready_is_degraded_not_unready_while_dependencies_are_down(client: TestClient) -> None:
    # Nothing but the route table answers: every backend's routes fail with 503, limits fall back in
    # process, yet the gateway serves, so it stays in rotation and names what is down.
    response = client.get("/ready", headers={"X-Request-ID": "req-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"] == {
        "routes": "up",
        "users": "down",
        "auth": "down",
        "posts": "down",
        "broker": "down",
        "redis": "down",
        "kafka": "down",
    }
    assert body["dependencies"]["routes"]["status"] == "ok"
    for part in ("users", "auth", "posts", "broker", "redis", "kafka"):
        assert body["dependencies"][part]["status"] == "degraded"
        assert body["dependencies"][part]["since"].endswith("Z")
    metrics = client.get("/metrics").text
    assert 'portico_dependency_up{dependency="redis",impact="degraded",process="gateway"} 0.0' in metrics
    assert 'portico_dependency_up{dependency="routes",impact="unready",process="gateway"} 1.0' in metrics


def test_ready_is_200_when_every_probe_answers(client: TestClient) -> None:
    async def up() -> bool:
        return True

    client.app_state["probes"] = {"users": up, "redis": up}
    body = client.get("/ready").json()
    assert body["status"] == "ready"
    assert body["checks"] == {"users": "up", "redis": "up"}
    assert {part["status"] for part in body["dependencies"].values()} == {"ok"}


def test_ready_is_503_without_a_route_table(client: TestClient) -> None:
    async def up() -> bool:
        return True

    async def down() -> bool:
        return False

    client.app_state["probes"] = {"routes": down, "users": up}
    response = client.get("/ready", headers={"X-Request-ID": "req-2"})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "UNAVAILABLE"
    assert error["request_id"] == "req-2"
    assert "routes" in error["message"]
    assert error["details"]["checks"] == {"routes": "down", "users": "up"}
    assert error["details"]["dependencies"]["routes"]["status"] == "down"


def test_unknown_route_and_wrong_method_use_the_envelope(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    wrong = client.post("/health")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["status_code"] == 405


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"}).headers[
        "x-request-id"
    ]
    assert generated != "bad id\nwith newline"
    assert len(generated) == 32
    assert client.get("/health").headers["x-request-id"]


def test_metrics_is_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "process_cpu_seconds_total" in response.text


def test_requests_are_counted_by_route_template_never_by_raw_path(client: TestClient) -> None:
    client.get("/health")
    client.get("/api/v1/users/0b9f4a8e-5a7e-4c61-9d7c-3f1f6a2b9c10")  # no token: 401 at the edge
    client.get("/no/such/path/123")
    metrics = client.get("/metrics").text
    assert 'portico_gateway_requests_total{method="GET",route="/health",status="200"} 1.0' in metrics
    assert 'route="/api/v1/users/{user_id}",status="401"' in metrics
    assert 'route="unmatched",status="404"' in metrics
    assert "0b9f4a8e" not in metrics
    assert "/no/such/path" not in metrics
    assert 'portico_gateway_request_duration_seconds_count{method="GET",route="/health"} 1.0' in metrics


def test_strict_ready_is_503_naming_every_part_that_is_down(client: TestClient) -> None:
    async def up() -> bool:
        return True

    async def down() -> bool:
        return False

    client.app_state["probes"] = {"routes": up, "users": up, "redis": down, "kafka": down}
    assert client.get("/ready").status_code == 200
    response = client.get("/ready?strict=true")
    assert response.status_code == 503
    error = response.json()["error"]
    assert "redis" in error["message"]
    assert "kafka" in error["message"]
    assert "users" not in error["message"]
    client.app_state["probes"] = {"routes": up, "users": up}
    assert client.get("/ready?strict=1").json()["status"] == "ready"


def test_an_unexpected_error_is_a_500_in_the_envelope_with_its_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenRoutes:
        @property
        def table(self) -> object:
            raise RuntimeError("internal detail: 10.0.0.7:5432")

    client.app_state["routes"] = BrokenRoutes()
    response = client.get("/api/v1/users/me", headers={"X-Request-ID": "req-boom"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-boom"
    assert response.json() == {
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "Internal server error",
            "status_code": 500,
            "request_id": "req-boom",
        }
    }
    assert "10.0.0.7" not in response.text
    # The traceback is in the log, under the request id; the answer is counted as the 500 it was.
    logged = next(r for r in caplog.records if r.getMessage() == "unhandled error")
    assert logged.exc_info is not None
    assert getattr(logged, "request_id", None) == "req-boom"
    assert 'route="unmatched",status="500"' in client.get("/metrics").text
