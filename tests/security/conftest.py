"""Fixtures of the attack suite: the session's mesh, a client per test from an address of its own
(``network.py``), a stricter gateway in front of the same backends, the forger of tokens and the mesh's
Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from harness.forgery import Forger
from harness.gateway import extra_gateway
from harness.mesh import Mesh
from tests.security.network import ALLOWED_ORIGIN, STRICT_LOGIN, STRICT_PER_IP, fresh_address

ClientFactory = Callable[[str], httpx.Client]


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    """Clients to a gateway URL, each from a fresh loopback address; closed after the test."""
    opened: list[httpx.Client] = []

    def open_client(url: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=fresh_address())
        client = httpx.Client(base_url=url, timeout=30, transport=transport)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture
def client(mesh: Mesh, connect: ClientFactory) -> httpx.Client:
    """The session's gateway, from this test's own address."""
    return connect(mesh.gateway_url)


@pytest.fixture(scope="session")
def strict_url(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway with production-like limits and CORS on, in front of the session's backends."""
    with extra_gateway(
        mesh.env,
        tmp_path_factory.mktemp("strict-gateway"),
        PORTICO_GATEWAY_RATE_LIMIT_PER_IP=f"{STRICT_PER_IP}/minute",
        PORTICO_GATEWAY_RATE_LIMIT_LOGIN=f"{STRICT_LOGIN}/minute",
        PORTICO_GATEWAY_CORS_ORIGINS=ALLOWED_ORIGIN,
    ) as url:
        yield url


@pytest.fixture
def strict(strict_url: str, connect: ClientFactory) -> httpx.Client:
    """The stricter gateway, from this test's own address."""
    return connect(strict_url)


@pytest.fixture(scope="session")
def forger(mesh: Mesh) -> Forger:
    """Signs with the mesh auth backend's current key (checked to be the one it publishes)."""
    forger = Forger.of_mesh(mesh.env)
    served = httpx.get(f"{mesh.gateway_url}/.well-known/jwks.json", timeout=15).json()
    assert forger.kid in {key["kid"] for key in served["keys"]}, "the forging key must be the published one"
    return forger


@pytest.fixture(scope="session")
def mesh_redis(mesh: Mesh) -> Iterator[redis.Redis]:
    """The Redis the mesh keeps its limits, lockouts and revocations in."""
    client = redis.Redis.from_url(mesh.env["PORTICO_REDIS_URL"])
    yield client
    client.close()
