"""A backend turns NOT_SERVING when Redis goes away and SERVING again when it is back; the gateway's
/ready names the part that is down."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from grpc_health.v1 import health_pb2

from harness.backends import spawn_backend
from harness.infra import InfraEnv
from harness.processes import spawn, wait_until
from infra.local import LocalRedis, free_port

pytestmark = pytest.mark.infra

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_health_and_readiness_follow_redis(infra: InfraEnv, tmp_path: Path) -> None:
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

    def ready_checks() -> dict[str, str]:
        try:
            body = httpx.get(f"http://127.0.0.1:{gateway_port}/ready", timeout=5).json()
        except httpx.HTTPError:
            return {}
        return body.get("checks") or body.get("error", {}).get("details", {}).get("checks", {})  # type: ignore[no-any-return]

    try:
        wait_until(lambda: users.health() == SERVING, 60, "users SERVING")
        wait_until(lambda: ready_checks().get("users") == "up", 30, "gateway sees users up")

        redis.stop()
        wait_until(lambda: users.health() == NOT_SERVING, 15, "users NOT_SERVING without Redis")
        wait_until(lambda: ready_checks().get("redis") == "down", 15, "gateway names redis")
        assert ready_checks().get("users") == "down"

        redis.start()
        redis.wait_ready()
        wait_until(lambda: users.health() == SERVING, 15, "users SERVING again")
    finally:
        gateway.terminate()
        users.stop()
        redis.stop()
