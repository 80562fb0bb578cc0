"""TLS at the gateway, checked with real processes and real handshakes: HTTPS termination (optionally
requiring client certificates), and TLS/mTLS from the gateway to a backend that requires client certs."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.backends import spawn_backend
from harness.certs import Pem, make_pki
from harness.infra import InfraEnv
from harness.processes import Proc, spawn, wait_until
from harness.tokens import TokenIssuer
from infra.local import free_port
from meshkit.rpc.channels import channel_credentials
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc
from stubs.users.v1 import users_pb2, users_pb2_grpc

HTTP_TIMEOUT = 5


def _dead_upstreams() -> dict[str, str]:
    dead = f"127.0.0.1:{free_port()}"  # /health needs no backend
    return {f"PORTICO_{name}_TARGET": dead for name in ("USERS", "AUTH", "POSTS", "BROKER")} | {
        "PORTICO_KAFKA_BOOTSTRAP": dead,
        "PORTICO_REDIS_URL": f"redis://{dead}/0",
    }


def _spawn_gateway(tmp_path: Path, env: dict[str, str]) -> tuple[Proc, int]:
    port = free_port()
    name = f"gateway-{port}"
    return spawn(name, ["-m", "gateway"], {"PORTICO_GATEWAY_PORT": str(port), **env}, tmp_path), port


def _context(ca: Pem, client: Pem | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def _https_health(port: int, context: ssl.SSLContext) -> int | None:
    try:
        return httpx.get(f"https://127.0.0.1:{port}/health", verify=context, timeout=HTTP_TIMEOUT).status_code
    except httpx.HTTPError:
        return None


def _wait_https(proc: Proc, port: int, context: ssl.SSLContext) -> None:
    wait_until(
        lambda: _https_health(port, context) == 200 or proc.popen.poll() is not None, 60, "gateway HTTPS"
    )
    assert proc.popen.poll() is None, proc.log()[-3000:]


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Pem, Pem, Pem]:
    return make_pki(tmp_path)


def test_gateway_terminates_tls_and_refuses_plain_http(tmp_path: Path, pki: tuple[Pem, Pem, Pem]) -> None:
    ca, server, _ = pki
    env = _dead_upstreams() | {
        "PORTICO_GATEWAY_TLS_CERT_FILE": str(server.cert),
        "PORTICO_GATEWAY_TLS_KEY_FILE": str(server.key),
    }
    proc, port = _spawn_gateway(tmp_path, env)
    try:
        _wait_https(proc, port, _context(ca))
        response = httpx.get(f"https://127.0.0.1:{port}/health", verify=_context(ca), timeout=HTTP_TIMEOUT)
        assert response.json() == {"status": "healthy"}
        assert response.headers["x-request-id"]
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=HTTP_TIMEOUT)
        (tmp_path / "other").mkdir()
        stranger_ca, _, _ = make_pki(tmp_path / "other")
        with pytest.raises(httpx.ConnectError):  # the certificate is checked by the client, as it should
            httpx.get(f"https://127.0.0.1:{port}/health", verify=_context(stranger_ca), timeout=HTTP_TIMEOUT)
    finally:
        proc.terminate()


def test_gateway_requires_a_client_certificate_when_a_client_ca_is_set(
    tmp_path: Path, pki: tuple[Pem, Pem, Pem]
) -> None:
    ca, server, client = pki
    env = _dead_upstreams() | {
        "PORTICO_GATEWAY_TLS_CERT_FILE": str(server.cert),
        "PORTICO_GATEWAY_TLS_KEY_FILE": str(server.key),
        "PORTICO_GATEWAY_TLS_CLIENT_CA_FILE": str(ca.cert),
    }
    proc, port = _spawn_gateway(tmp_path, env)
    try:
        _wait_https(proc, port, _context(ca, client))
        assert _https_health(port, _context(ca)) is None, "a client without a certificate must be refused"
    finally:
        proc.terminate()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"TLS_CERT_FILE": "cert"}, "PORTICO_GATEWAY_TLS_KEY_FILE"),
        ({"TLS_KEY_FILE": "key"}, "PORTICO_GATEWAY_TLS_CERT_FILE"),
        ({"TLS_CLIENT_CA_FILE": "ca"}, "PORTICO_GATEWAY_TLS_CLIENT_CA_FILE needs TLS"),
        ({"TLS_CERT_FILE": "cert", "TLS_KEY_FILE": "missing"}, "TLS file not found"),
        ({"UPSTREAM_TLS_CERT_FILE": "client-cert"}, "Upstream TLS"),
        ({"UPSTREAM_TLS_CA_FILE": "ca", "UPSTREAM_TLS_KEY_FILE": "client-key"}, "Upstream TLS"),
    ],
    ids=["cert-only", "key-only", "client-ca-only", "missing-file", "upstream-cert-only", "upstream-no-cert"],
)
def test_half_a_tls_configuration_stops_the_gateway_with_a_clear_message(
    tmp_path: Path, pki: tuple[Pem, Pem, Pem], settings: dict[str, str], message: str
) -> None:
    ca, server, client = pki
    files = {
        "cert": server.cert,
        "key": server.key,
        "ca": ca.cert,
        "client-cert": client.cert,
        "client-key": client.key,
        "missing": tmp_path / "missing.pem",
    }
    env = _dead_upstreams() | {f"PORTICO_GATEWAY_{k}": str(files[v]) for k, v in settings.items()}
    proc, _ = _spawn_gateway(tmp_path, env)
    try:
        code = proc.popen.wait(60)
    finally:
        proc.terminate()
    assert code != 0
    log = proc.log()
    assert message in log
    assert "Traceback" not in log


def test_channel_credentials_are_none_for_plaintext() -> None:
    assert channel_credentials(None, None, None) is None


# ---- mTLS from the gateway to a backend ------------------------------------------------------------


class _Jwks(auth_pb2_grpc.AuthServiceServicer):
    """A TLS JWKS endpoint with the test issuer's keys, standing in for the auth backend."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self._issuer = issuer

    def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Any) -> auth_pb2.GetJwksResponse:
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.Jwk(**jwk) for jwk in self._issuer.published])


@pytest.fixture
def tls_jwks(issuer: TokenIssuer, pki: tuple[Pem, Pem, Pem]) -> Iterator[str]:
    _, server_pem, _ = pki
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(_Jwks(issuer), server)  # type: ignore[abstract]
    credentials = grpc.ssl_server_credentials([(server_pem.key.read_bytes(), server_pem.cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def _mtls_serving(target: str, ca: Pem, client: Pem) -> bool:
    credentials = channel_credentials(ca.cert, client.cert, client.key)
    assert credentials is not None
    try:
        with grpc.secure_channel(target, credentials) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def mtls_users(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path, pki: tuple[Pem, Pem, Pem]
) -> Iterator[str]:
    """A real users backend that serves only mTLS (client certificates from the test CA)."""
    ca, server, client = pki
    env = {
        **infra.env(),
        "PORTICO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'users.db'}",
        "PORTICO_JWKS_TARGET": issuer.target,
        "PORTICO_USERS_TLS_CERT_FILE": str(server.cert),
        "PORTICO_USERS_TLS_KEY_FILE": str(server.key),
        "PORTICO_USERS_TLS_CLIENT_CA_FILE": str(ca.cert),
    }
    # Spawned, not started: its plaintext health check cannot reach an mTLS-only server.
    users = spawn_backend("users", env, tmp_path)
    proc, target = users.proc, users.target
    try:
        wait_until(
            lambda: _mtls_serving(target, ca, client) or proc.popen.poll() is not None, 90, "mTLS users"
        )
        assert proc.popen.poll() is None, proc.log()[-3000:]
        yield target
    finally:
        proc.terminate()


def _gateway_to(
    tmp_path: Path, infra: InfraEnv, users: str, jwks: str, upstream_tls: dict[str, Path]
) -> tuple[Proc, str]:
    env = _dead_upstreams() | {
        "PORTICO_REDIS_URL": infra.env()["PORTICO_REDIS_URL"],
        "PORTICO_USERS_TARGET": users,
        "PORTICO_AUTH_TARGET": jwks,  # the JWKS the gateway checks tokens with
        **{f"PORTICO_GATEWAY_UPSTREAM_TLS_{k}": str(v) for k, v in upstream_tls.items()},
    }
    proc, port = _spawn_gateway(tmp_path, env)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=HTTP_TIMEOUT).status_code == 200
        except httpx.HTTPError:
            return proc.popen.poll() is not None

    wait_until(up, 60, "gateway /health")
    assert proc.popen.poll() is None, proc.log()[-3000:]
    return proc, url


def _create_user_directly(
    target: str, ca: Pem, client: Pem, issuer: TokenIssuer, tenant: str
) -> dict[str, str]:
    credentials = channel_credentials(ca.cert, client.cert, client.key)
    assert credentials is not None
    service = issuer.token("service:auth", tenant, ("service",))
    with grpc.secure_channel(target, credentials) as channel:
        reply = users_pb2_grpc.UserServiceStub(channel).CreateUser(
            users_pb2.CreateUserRequest(tenant_id=tenant, username="tilly", email="tilly@example.com"),
            metadata=(("authorization", f"Bearer {service}"),),
            timeout=10,
        )
    return {"id": reply.user.id, "email": reply.user.email}


@pytest.mark.infra
def test_gateway_reaches_an_mtls_backend_with_its_client_certificate(
    infra: InfraEnv,
    issuer: TokenIssuer,
    tmp_path: Path,
    pki: tuple[Pem, Pem, Pem],
    mtls_users: str,
    tls_jwks: str,
) -> None:
    ca, _, client = pki
    tenant = f"tls-{uuid.uuid4().hex[:8]}"
    user = _create_user_directly(mtls_users, ca, client, issuer, tenant)  # the auth backend's job
    proc, url = _gateway_to(
        tmp_path,
        infra,
        mtls_users,
        tls_jwks,
        {"CA_FILE": ca.cert, "CERT_FILE": client.cert, "KEY_FILE": client.key},
    )
    try:
        own = {"Authorization": f"Bearer {issuer.token(user['id'], tenant, ('user',), email=user['email'])}"}
        fetched = httpx.get(f"{url}/api/v1/users/me", headers=own, timeout=HTTP_TIMEOUT)
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["data"]["id"] == user["id"]
        assert fetched.json()["data"]["username"] == "tilly"
    finally:
        proc.terminate()


@pytest.mark.infra
def test_without_a_client_certificate_the_backend_call_is_a_clean_503(
    infra: InfraEnv,
    issuer: TokenIssuer,
    tmp_path: Path,
    pki: tuple[Pem, Pem, Pem],
    mtls_users: str,
    tls_jwks: str,
) -> None:
    ca, _, _ = pki
    tenant = f"tls-{uuid.uuid4().hex[:8]}"
    admin = issuer.token(str(uuid.uuid4()), tenant, ("admin", "user"))
    proc, url = _gateway_to(tmp_path, infra, mtls_users, tls_jwks, {"CA_FILE": ca.cert})
    try:
        response = httpx.get(
            f"{url}/api/v1/users/{uuid.uuid4()}",
            headers={"Authorization": f"Bearer {admin}", "X-Request-ID": "mtls-1"},
            timeout=HTTP_TIMEOUT * 3,
        )
        assert response.status_code == 503, response.text
        assert response.json() == {
            "error": {
                "code": "UNAVAILABLE",
                "message": "Service unavailable",  # never the TLS failure's internals
                "status_code": 503,
                "request_id": "mtls-1",
            }
        }
    finally:
        proc.terminate()
    assert "Traceback" not in proc.log()
