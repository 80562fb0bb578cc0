"""Rate limits through a gateway with small limits: headers on every API answer, login class, 429."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.local import free_port
from tests.support.mesh import Mesh, gateway_ready
from tests.support.processes import spawn, wait_until

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def strict_gateway(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **mesh.env,
        "PORTICO_GATEWAY_PORT": str(port),
        "PORTICO_RATE_LIMIT_PER_IP": "30/minute",
        "PORTICO_RATE_LIMIT_LOGIN": "3/minute",
    }
    proc = spawn(f"gateway-{port}", ["-m", "gateway"], env, Path(tmp_path_factory.mktemp("strict-gateway")))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: gateway_ready(url), 60, "the strict gateway")
        yield url
    finally:
        proc.terminate()


def test_login_class_is_limited_per_account_with_the_contract_headers(strict_gateway: str) -> None:
    account = f"nobody-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=strict_gateway, timeout=15) as client:
        answers = [
            client.post(
                "/api/v1/auth/login",
                json={"username": account, "password": "wrong-password-1"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )  # not a trusted proxy: ignored
            for i in range(4)
        ]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    for answer in answers:
        assert {
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "ratelimit-policy",
            "ratelimit",
        } <= set(answer.headers)
    refused = answers[3]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert '"login";q=3;w=60' in refused.headers["ratelimit-policy"]
    assert '"ip";q=30;w=60' in refused.headers["ratelimit-policy"]
