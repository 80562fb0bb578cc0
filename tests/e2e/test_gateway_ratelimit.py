"""Rate limits through a gateway with small limits: headers on every API answer, login class, 429."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.gateway import gateway_ready
from harness.mesh import Mesh
from harness.processes import spawn, wait_until
from infra.local import free_port

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def strict_gateway(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **mesh.env,
        "PORTICO_GATEWAY_PORT": str(port),
        "PORTICO_GATEWAY_RATE_LIMIT_PER_IP": "30/minute",
        "PORTICO_GATEWAY_RATE_LIMIT_LOGIN": "3/minute",
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


def test_refused_tokens_and_bodies_are_charged_to_the_client_ip(strict_gateway: str) -> None:
    """A sprayer of forged tokens meets a 429 like any other client, instead of costing the gateway a
    signature check per request for free."""
    forged = {"Authorization": "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}
    with httpx.Client(base_url=strict_gateway, timeout=15) as client:
        answers = [client.get("/api/v1/users/me", headers=forged) for _ in range(31)]
        bad_body = client.post(
            "/api/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 401
    assert "x-ratelimit-remaining" in answers[0].headers
    assert answers[0].headers["www-authenticate"].startswith("Bearer")
    assert statuses[-1] == 429  # 30 per minute per IP, and earlier tests of this module spent some
    assert set(statuses) == {401, 429}
    assert bad_body.status_code == 429  # the IP's budget is spent: a refused body is charged too
