"""Redis killed under a mesh of its own: revoked tokens stay refused everywhere, a deletion is applied.

The mesh (four backends and the gateway) runs on its own Redis, its own SQLite databases and its own
consumer groups on the session's Kafka, so killing that Redis touches no other test. Each scenario
prints one ``FAULT`` line with what it measured.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest
import redis

from harness.accounts import PASSWORD, bearer, register
from harness.infra import InfraEnv
from harness.mesh import Mesh, start_mesh
from infra.local import LocalRedis
from infra.procs import free_port
from meshkit.auth.revocation import FILLED_KEY, revoked_jti_key
from stubs.users.v1 import users_pb2, users_pb2_grpc

pytestmark = pytest.mark.infra

OUTAGE_SECONDS = 20.0
PROPAGATION_BOUND = 5.0  # a revocation made while Redis is away reaches every verifier within this


@dataclass
class OwnRedis:
    port: int
    data_dir: Path
    server: LocalRedis

    def kill(self) -> None:
        """SIGKILL: the memory (every revocation mark) is gone, like a Redis without persistence."""
        pid = self.server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.server.is_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.server.stop()  # reaps the process

    def restart(self) -> None:
        """A fresh, empty Redis on the same port."""
        self.server = LocalRedis(port=self.port, data_dir=self.data_dir)
        self.server.start()
        self.server.wait_ready(timeout=30)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    data_dir = tmp_path_factory.mktemp("fault-redis")
    port = free_port()
    server = LocalRedis(port=port, data_dir=data_dir)
    server.start()
    server.wait_ready(timeout=30)
    own = OwnRedis(port, data_dir, server)
    yield own
    own.server.stop()


@pytest.fixture(scope="module")
def fault_mesh(
    infra: InfraEnv, own_redis: OwnRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mesh]:
    suffix = secrets.token_hex(4)
    env = {
        **infra.env(),
        "PORTICO_REDIS_URL": own_redis.server.url,
        "PORTICO_DATABASE_URL": "",  # own SQLite files: no other relay publishes this mesh's rows
        "PORTICO_AUTH_CONSUMER_GROUP": f"portico-auth-{suffix}",
        "PORTICO_POSTS_CONSUMER_GROUP": f"portico-posts-{suffix}",
    }
    mesh = start_mesh(env, tmp_path_factory.mktemp("fault-mesh"))
    yield mesh
    mesh.stop()


def gateway_status(client: httpx.Client, token: str) -> int:
    return client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).status_code


def backend_code(stub: users_pb2_grpc.UserServiceStub, token: str) -> grpc.StatusCode:
    try:
        stub.GetMe(users_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=5)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@dataclass
class Tally:
    tried: int = 0
    refused: int = 0
    wrongly_allowed: int = 0
    valid_allowed: int = 0
    valid_refused: int = 0
    unavailable: int = 0

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.__dict__.items())


def probe(
    client: httpx.Client, stub: users_pb2_grpc.UserServiceStub, revoked: list[str], valid: str, tally: Tally
) -> None:
    """Every revoked token at the gateway and at a backend, and one valid token at both."""
    for token in revoked:
        at_backend = backend_code(stub, token) == grpc.StatusCode.OK
        for allowed in (gateway_status(client, token) == 200, at_backend):
            tally.tried += 1
            if allowed:
                tally.wrongly_allowed += 1
            else:
                tally.refused += 1
    for ok in (gateway_status(client, valid) == 200, backend_code(stub, valid) == grpc.StatusCode.OK):
        if ok:
            tally.valid_allowed += 1
        else:
            tally.valid_refused += 1


def wait_for(predicate: Callable[[], bool], timeout: float) -> tuple[float, int]:
    """Seconds until ``predicate()`` held, and how many times it did not; fails after ``timeout``."""
    start, misses = time.monotonic(), 0
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        misses += 1
        time.sleep(0.05)
    return time.monotonic() - start, misses


class RefusedEverywhere:
    """The predicate "the gateway and a backend both refuse ``token``", counting the times either let
    it in while the revocation was on its way."""

    def __init__(self, client: httpx.Client, stub: users_pb2_grpc.UserServiceStub, token: str) -> None:
        self.client, self.stub, self.token = client, stub, token
        self.allowed = 0

    def __call__(self) -> bool:
        at_gateway = gateway_status(self.client, self.token)
        at_backend = backend_code(self.stub, self.token)
        self.allowed += (at_gateway == 200) + (at_backend == grpc.StatusCode.OK)
        return at_gateway == 401 and at_backend == grpc.StatusCode.UNAUTHENTICATED


def logout(client: httpx.Client, data: dict[str, Any]) -> None:
    response = client.post(
        "/api/v1/auth/logout", headers=bearer(data), json={"refresh_token": data["refresh_token"]}
    )
    assert response.status_code == 200, response.text


def report(record_property: Callable[[str, object], None], scenario: str, **numbers: object) -> None:
    line = f"FAULT {scenario}: " + " ".join(f"{k}={v}" for k, v in numbers.items())
    print(line)
    for key, value in numbers.items():
        record_property(key, value)


def test_logged_out_tokens_stay_refused_through_a_redis_outage_and_an_empty_restart(
    fault_mesh: Mesh, own_redis: OwnRedis, record_property: Callable[[str, object], None]
) -> None:
    tenant = f"fault-{secrets.token_hex(3)}"
    channel = grpc.insecure_channel(fault_mesh.target("users"))
    stub = users_pb2_grpc.UserServiceStub(channel)
    with httpx.Client(base_url=fault_mesh.gateway_url, timeout=10) as client:
        before, during, valid = register(client, tenant), register(client, tenant), register(client, tenant)
        logout(client, before)
        assert gateway_status(client, before["access_token"]) == 401
        assert backend_code(stub, before["access_token"]) == grpc.StatusCode.UNAUTHENTICATED

        own_redis.kill()
        outage_started = time.monotonic()
        logout(client, during)  # logging out needs no Redis
        refused_during = RefusedEverywhere(client, stub, during["access_token"])
        propagation, _ = wait_for(refused_during, PROPAGATION_BOUND)
        revoked = [before["access_token"], during["access_token"]]
        outage = Tally()
        while time.monotonic() - outage_started < OUTAGE_SECONDS:
            probe(client, stub, revoked, valid["access_token"], outage)
            time.sleep(0.1)
        refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": during["refresh_token"]})

        restarted_at = time.monotonic()
        own_redis.restart()  # empty memory
        after = Tally()
        probe(client, stub, revoked, valid["access_token"], after)  # before the re-fill, too
        store = own_redis.client()
        refill, _ = wait_for(
            lambda: (
                bool(store.exists(FILLED_KEY))
                and bool(
                    store.exists(
                        revoked_jti_key(*(_claim(before["access_token"], c) for c in ("tenant_id", "jti")))
                    )
                )
            ),
            15,
        )
        refill_s = time.monotonic() - restarted_at
        for _ in range(20):
            probe(client, stub, revoked, valid["access_token"], after)
    channel.close()
    report(
        record_property,
        "redis_outage_logout",
        outage_s=OUTAGE_SECONDS,
        propagation_s=round(propagation, 3),
        allowed_while_propagating=refused_during.allowed,
        refill_s=round(refill_s, 3),
        refill_wait_s=round(refill, 3),
        outage_tried=outage.tried,
        outage_refused=outage.refused,
        outage_wrongly_allowed=outage.wrongly_allowed,
        outage_valid_allowed=outage.valid_allowed,
        outage_valid_refused=outage.valid_refused,
        after_tried=after.tried,
        after_wrongly_allowed=after.wrongly_allowed,
        after_valid_refused=after.valid_refused,
    )
    assert outage.wrongly_allowed == 0
    assert after.wrongly_allowed == 0
    assert outage.refused > 0
    assert after.refused > 0
    assert outage.valid_refused == 0
    assert after.valid_refused == 0
    assert refresh.status_code == 401, refresh.text


def _claim(token: str, name: str) -> str:
    """A claim of a token this test was given (no verification needed)."""
    value: str = jwt.decode(token, options={"verify_signature": False})[name]
    return value


def test_a_user_deleted_during_a_redis_outage_is_fully_applied(
    fault_mesh: Mesh, own_redis: OwnRedis, record_property: Callable[[str, object], None]
) -> None:
    tenant = f"fault-{secrets.token_hex(3)}"
    channel = grpc.insecure_channel(fault_mesh.target("users"))
    stub = users_pb2_grpc.UserServiceStub(channel)
    with httpx.Client(base_url=fault_mesh.gateway_url, timeout=10) as client:
        victim = register(client, tenant)
        user = victim["user"]
        own_redis.kill()
        outage_started = time.monotonic()
        deleted = client.delete(f"/api/v1/users/{user['id']}", headers=bearer(victim))
        assert deleted.status_code == 200, deleted.text
        refused_victim = RefusedEverywhere(client, stub, victim["access_token"])
        propagation, _ = wait_for(refused_victim, PROPAGATION_BOUND)
        refused = 0
        while time.monotonic() - outage_started < OUTAGE_SECONDS:
            assert gateway_status(client, victim["access_token"]) == 401
            assert backend_code(stub, victim["access_token"]) == grpc.StatusCode.UNAUTHENTICATED
            refused += 2
            time.sleep(0.2)
        own_redis.restart()

        credentials = {"tenant_id": tenant, "username": user["username"], "password": PASSWORD}
        login = client.post("/api/v1/auth/login", json=credentials)
        refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": victim["refresh_token"]})
        token_after = gateway_status(client, victim["access_token"])
        again = client.post(
            "/api/v1/auth/register",
            json={
                "tenant_id": tenant,
                "username": user["username"],
                "email": user["email"],
                "password": PASSWORD,
            },
        )
    channel.close()
    report(
        record_property,
        "redis_outage_deletion",
        outage_s=OUTAGE_SECONDS,
        propagation_s=round(propagation, 3),
        allowed_while_propagating=refused_victim.allowed,
        refused_during_outage=refused,
        login_after=login.status_code,
        refresh_after=refresh.status_code,
        token_after=token_after,
        register_again=again.status_code,
    )
    assert login.status_code == 401, login.text
    assert refresh.status_code == 401, refresh.text
    assert token_after == 401
    assert again.status_code == 201, again.text
