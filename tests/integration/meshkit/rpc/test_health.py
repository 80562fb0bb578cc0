"""Readiness follows only what a process cannot serve without: with Redis gone, a backend stays SERVING
and the gateway's /ready stays 200, naming Redis as degraded; with its own database gone, the backend
turns NOT_SERVING while its liveness service stays SERVING, and SERVING again when the database is back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from grpc_health.v1 import health_pb2

from harness.backends import spawn_backend
from harness.infra import InfraEnv
from harness.processes import spawn, wait_until
from infra.local import LocalPostgres, LocalRedis, free_port
from meshkit.rpc.health import LIVENESS

pytestmark = pytest.mark.infra

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_redis_going_away_degrades_but_does_not_unready(infra: InfraEnv, tmp_path: Path) -> None:
    redis = LocalRedis(port=free_port(), data_dir=tmp_path / "redis")
    redis.start()
    redis.wait_ready()
    port, gateway_port = free_port(), free_port()
    env = {
        **infra.env(),
        "PORTICO_REDIS_URL": redis.url,
        "PORTICO_HEALTH_INTERVAL": "0.5",
        "PORTICO_USERS_TARGET": f"127.0.0.1:{port}",
        "PORTICO_GATEWAY_PORT": str(gateway_port),
    }
    users = spawn_backend("users", env, tmp_path, port=port)
    gateway = spawn("gateway", ["-m", "gateway"], env, tmp_path)

    def ready() -> tuple[int, dict[str, Any]]:
        """/ready's status and body; a 503's checks are in the error envelope's details."""
        try:
            response = httpx.get(f"http://127.0.0.1:{gateway_port}/ready", timeout=5)
        except httpx.HTTPError:
            return 0, {}
        body: dict[str, Any] = response.json()
        return response.status_code, body.get("error", {}).get("details", body)

    try:
        wait_until(lambda: users.health() == SERVING, 60, "users SERVING")
        wait_until(lambda: ready()[1].get("checks", {}).get("users") == "up", 30, "gateway sees users up")

        redis.stop()
        wait_until(lambda: ready()[1].get("checks", {}).get("redis") == "down", 15, "gateway sees redis down")
        status, body = ready()
        assert status == 200, body
        assert body["status"] == "degraded"
        assert body["dependencies"]["redis"]["status"] == "degraded"
        assert body["checks"]["users"] == "up"  # the backend serves on without Redis
        assert users.health() == SERVING
        assert users.health(LIVENESS) == SERVING

        redis.start()
        redis.wait_ready()
        wait_until(lambda: ready()[1].get("checks", {}).get("redis") == "up", 15, "gateway sees redis back")
        assert ready()[1]["dependencies"]["redis"]["status"] == "ok"
    finally:
        gateway.terminate()
        users.stop()
        redis.stop()


def test_its_database_going_away_unreadies_a_backend_but_not_its_liveness(
    infra: InfraEnv, tmp_path: Path
) -> None:
    postgres = LocalPostgres(port=free_port(), data_dir=tmp_path / "postgres")
    postgres.start()
    postgres.wait_ready()
    env = {**infra.env(), "PORTICO_DATABASE_URL": postgres.url, "PORTICO_HEALTH_INTERVAL": "0.5"}
    users = spawn_backend("users", env, tmp_path)
    try:
        users.wait_serving(90)
        assert users.health(LIVENESS) == SERVING

        postgres.stop()
        wait_until(lambda: users.health() == NOT_SERVING, 15, "users NOT_SERVING without its database")
        assert users.health("users.v1.UserService") == NOT_SERVING
        assert users.health(LIVENESS) == SERVING  # alive: restarting it would not bring the database back
        labels = {"process": "users", "dependency": "database", "impact": "unready"}
        assert users.metric("portico_dependency_up", labels) == 0

        postgres.start()
        postgres.wait_ready()
        wait_until(lambda: users.health() == SERVING, 30, "users SERVING with its database back")
    finally:
        users.stop()
        postgres.stop()
