"""Rate limits through a gateway with small limits: headers on every API answer, login class, 429."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from harness.gateway import gateway_ready
from harness.infra import InfraEnv
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


def test_spellings_of_one_account_share_its_login_budget(strict_gateway: str) -> None:
    """The login limit keys the account as auth looks it up: surrounding spaces, case, or an email sent
    beside the username buy no fresh budget; the 429 comes after as many attempts as for one spelling."""
    account = f"nobody-{uuid.uuid4().hex[:8]}"
    spellings = [
        {"username": f" {account}"},
        {"username": f"{account}\t"},
        {"username": account.upper()},
        {"username": account, "email": f"junk-{uuid.uuid4().hex[:8]}@example.com"},
    ]
    with httpx.Client(base_url=strict_gateway, timeout=15) as client:
        answers = [
            client.post("/api/v1/auth/login", json={**spelling, "password": "wrong-password-1"})
            for spelling in spellings
        ]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert answers[3].json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"


def test_an_oversized_login_name_is_a_400_and_leaves_no_big_redis_key(
    strict_gateway: str, infra: InfraEnv
) -> None:
    huge = "a" * 256 * 1024
    bodies = [
        ({"username": huge, "password": "wrong-password-1"}, "username"),
        ({"tenant_id": huge, "email": huge, "password": "wrong-password-1"}, "tenant_id"),
    ]
    with httpx.Client(base_url=strict_gateway, timeout=15) as client:
        for body, field in bodies:
            answer = client.post("/api/v1/auth/login", json=body)
            assert answer.status_code == 400, answer.text[:500]
            error = answer.json()["error"]
            assert (error["code"], error["status_code"]) == ("BAD_REQUEST", 400)
            assert field in {detail["field"] for detail in error["details"]}
            assert huge not in answer.text
    client_redis = redis.Redis.from_url(infra.redis_url)
    try:
        longest = max(len(key) for key in client_redis.scan_iter(match="portico:*", count=1000))
    finally:
        client_redis.close()
    assert longest <= 256  # every Portico key of the session, the rate limiter's and auth's included


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
