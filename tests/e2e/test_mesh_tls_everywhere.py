"""The whole mesh with TLS on every hop: each backend serves mTLS only and calls the others (and auth's
keys) with the mesh's client certificate, the gateway calls them with it too, every Kafka client speaks
mutual TLS to a broker whose only client listener is TLS and requires a client certificate, and every Redis
client speaks mutual TLS to a TLS-only redis-server. The README's flows work through the gateway; nobody
without a certificate gets an answer.

Its own Kafka and Redis (from a throw-away CA); the session's PostgreSQL, which stays plaintext."""

from __future__ import annotations

import socket
import ssl
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis

from harness.accounts import PASSWORD, bearer, register
from harness.backends import health_status
from harness.certs import Pem, make_pki
from harness.infra import InfraEnv
from harness.mesh import BACKENDS, Mesh, start_mesh
from infra.kafka_server import KafkaTls
from infra.local import LocalKafka, free_port, free_ports
from infra.redis_topologies import LocalRedisTLS
from meshkit.rpc.channels import channel_credentials

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Secured:
    mesh: Mesh
    ca: Pem
    client: Pem
    redis_url: str
    kafka_bootstrap: str


def _tls_env(ca: Pem, server: Pem, client: Pem) -> dict[str, str]:
    """Every backend serving mTLS and calling its peers with the client certificate; the gateway too."""
    env = {
        f"PORTICO_{name.upper()}_{key}": str(path)
        for name in BACKENDS
        for key, path in (
            ("TLS_CERT_FILE", server.cert),
            ("TLS_KEY_FILE", server.key),
            ("TLS_CLIENT_CA_FILE", ca.cert),
        )
    }
    for prefix in ("PORTICO_PEER_TLS", "PORTICO_GATEWAY_UPSTREAM_TLS"):
        env |= {
            f"{prefix}_CA_FILE": str(ca.cert),
            f"{prefix}_CERT_FILE": str(client.cert),
            f"{prefix}_KEY_FILE": str(client.key),
        }
    return env


@pytest.fixture(scope="module")
def secured(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    base = tmp_path_factory.mktemp("tls-everywhere")
    ca, server, client = make_pki(base)
    port, controller_port, internal_port = free_ports(3)
    kafka_tls = KafkaTls(
        ca_file=ca.cert,
        cert_file=server.cert,
        key_file=server.key,
        internal_port=internal_port,
        client_auth=True,
    )
    kafka = LocalKafka(port=port, controller_port=controller_port, data_dir=base / "kafka", tls=kafka_tls)
    redis_tls = LocalRedisTLS(
        port=free_port(),
        data_dir=base / "redis",
        ca=ca.cert,
        cert=server.cert,
        key=server.key,
        client=(client.cert, client.key),
    )
    with kafka, redis_tls:
        env = {
            "PORTICO_DATABASE_URL": infra.database_url,
            "PORTICO_KAFKA_BOOTSTRAP": kafka.bootstrap,  # its TLS listener
            "PORTICO_KAFKA_SECURITY_PROTOCOL": "SSL",
            "PORTICO_KAFKA_CA_FILE": str(ca.cert),
            "PORTICO_KAFKA_CERT_FILE": str(client.cert),  # the broker requires one
            "PORTICO_KAFKA_KEY_FILE": str(client.key),
            "PORTICO_REDIS_URL": redis_tls.url,
            "PORTICO_REDIS_TLS_CA_FILE": str(ca.cert),
            "PORTICO_REDIS_TLS_CERT_FILE": str(client.cert),
            "PORTICO_REDIS_TLS_KEY_FILE": str(client.key),
            **_tls_env(ca, server, client),
        }
        (base / "logs").mkdir()
        credentials = channel_credentials(ca.cert, client.cert, client.key)
        mesh = start_mesh(env, base / "logs", timeout=120, credentials=credentials)
        try:
            yield Secured(mesh, ca, client, redis_tls.url, kafka.bootstrap)
        finally:
            mesh.stop()


@pytest.fixture
def client(secured: Secured) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.mesh.gateway_url, timeout=30) as http:
        yield http


def test_the_readme_flows_work_with_tls_on_every_hop(secured: Secured, client: httpx.Client) -> None:
    assert client.get("/ready").status_code == 200, client.get("/ready").text  # Kafka, Redis and peers up
    tenant = f"tls-{uuid.uuid4().hex[:8]}"
    account = register(client, tenant)  # gateway → auth → users, events over Kafka TLS
    auth = bearer(account)
    login = client.post(
        "/api/v1/auth/login",
        json={"tenant_id": tenant, "username": account["user"]["username"], "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    me = client.get("/api/v1/users/me", headers=bearer(login.json()["data"]))  # Redis TLS: revocations, cache
    assert me.status_code == 200, me.text
    post = client.post("/api/v1/posts", json={"title": "Over TLS", "content": "every hop"}, headers=auth)
    assert post.status_code == 201, post.text  # posts → users over mTLS
    published = client.post("/api/v1/topics/tls-news/messages", json={"message": "hello"}, headers=auth)
    assert published.status_code == 202, published.text  # broker → Kafka over TLS
    logout = client.post("/api/v1/auth/logout", json={}, headers=bearer(login.json()["data"]))
    assert logout.status_code == 200, logout.text
    assert client.get("/api/v1/users/me", headers=bearer(login.json()["data"])).status_code == 401


def test_nobody_without_a_certificate_gets_an_answer(secured: Secured) -> None:
    server_only = channel_credentials(secured.ca.cert, None, None)
    for name in BACKENDS:
        target = secured.mesh.target(name)
        assert health_status(target) is None, name  # plaintext
        assert health_status(target, credentials=server_only) is None, name  # TLS without a client cert
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(secured.redis_url, ssl_ca_certs=str(secured.ca.cert), socket_timeout=5).ping()
    # Kafka: the broker's TLS listener wants the mesh's client certificate, as the mesh's clients bring it.
    assert _kafka_api_versions(secured.kafka_bootstrap, secured.ca, secured.client)
    assert not _kafka_api_versions(secured.kafka_bootstrap, secured.ca, None)


def _kafka_api_versions(bootstrap: str, ca: Pem, client: Pem | None) -> bool:
    """Whether the broker answers an ApiVersions request over TLS, with or without a client certificate.
    Under TLS 1.3 the client's handshake ends before the broker checks for a certificate, so a refusal
    arrives on the first read: an alert, a reset or end of stream."""
    context = ssl.create_default_context(cafile=str(ca.cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    host, _, port = bootstrap.rpartition(":")
    client_id = b"portico-test"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id  # ApiVersions v0, correlation id 1
    try:
        with (
            socket.create_connection((host, int(port)), timeout=15) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(struct.pack(">i", len(body)) + body)
            reply = tls.recv(8)
    except OSError:  # ssl.SSLError included
        return False
    return len(reply) == 8 and struct.unpack(">ii", reply)[1] == 1  # size, then our correlation id
