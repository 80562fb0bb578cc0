"""The route classes' rate limits through a gateway with small ones: sign-ups per client IP, searches and
password changes per caller, each a 429 with the contract's envelope and headers naming its class."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from harness.accounts import bearer, registration
from harness.gateway import gateway_ready
from harness.mesh import Mesh
from harness.processes import spawn, wait_until
from infra.local import free_port

pytestmark = pytest.mark.infra
SIGNUPS, SEARCHES, PASSWORD_CHANGES = 2, 3, 2


def own_redis_db(url: str) -> str:
    """The session's Redis, another database: the small limits' budgets meet no other gateway's."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/7"))


@pytest.fixture(scope="module")
def class_gateway(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **mesh.env,
        "PORTICO_GATEWAY_PORT": str(port),
        "PORTICO_REDIS_URL": own_redis_db(mesh.env["PORTICO_REDIS_URL"]),
        "PORTICO_GATEWAY_RATE_LIMIT_SIGNUP": f"{SIGNUPS}/hour",
        "PORTICO_GATEWAY_RATE_LIMIT_SEARCH": f"{SEARCHES}/minute",
        "PORTICO_GATEWAY_RATE_LIMIT_PASSWORD": f"{PASSWORD_CHANGES}/hour",
    }
    proc = spawn(f"gateway-{port}", ["-m", "gateway"], env, Path(tmp_path_factory.mktemp("class-gateway")))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: gateway_ready(url), 60, "the gateway with small class limits")
        yield url
    finally:
        proc.terminate()


def assert_limited_by(answer: httpx.Response, limit_class: str) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["status_code"] == 429
    assert f'"{limit_class}";' in answer.headers["ratelimit-policy"]
    assert int(answer.headers["retry-after"]) >= 1


def test_signups_search_and_password_changes_are_limited_by_their_class(
    class_gateway: str, mesh: Mesh
) -> None:
    tenant = f"rl-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=class_gateway, timeout=15) as client:
        signups = [
            client.post("/api/v1/auth/register", json=registration(tenant)) for _ in range(SIGNUPS + 1)
        ]
        assert [s.status_code for s in signups[:SIGNUPS]] == [201] * SIGNUPS
        assert_limited_by(signups[SIGNUPS], "signup")
        ann, bob = (s.json()["data"] for s in signups[:SIGNUPS])

        # Searches: per caller. Ann's budget spent, Bob still searches from the same address.
        searches = [
            client.get("/api/v1/users/search", params={"q": "ann"}, headers=bearer(ann))
            for _ in range(SEARCHES + 1)
        ]
        assert [s.status_code for s in searches[:SEARCHES]] == [200] * SEARCHES
        assert_limited_by(searches[SEARCHES], "search")
        assert client.get("/api/v1/users/search", params={"q": "bob"}, headers=bearer(bob)).status_code == 200

        # Password changes: a wrong old password spends the budget too (the class sits before auth).
        wrong = {"old_password": "not-the-password", "new_password": "lantern-Quartz-19"}
        changes = [
            client.post("/api/v1/auth/password", json=wrong, headers=bearer(bob))
            for _ in range(PASSWORD_CHANGES + 1)
        ]
        assert [c.status_code for c in changes[:PASSWORD_CHANGES]] == [401] * PASSWORD_CHANGES
        assert_limited_by(changes[PASSWORD_CHANGES], "password")

    # The shared gateway's own limits are untouched: its budgets live in another Redis database.
    with httpx.Client(base_url=mesh.gateway_url, timeout=15) as client:
        assert client.post("/api/v1/auth/register", json=registration(tenant)).status_code == 201
