"""The one client-channel factory: plaintext by default, TLS and mTLS with credentials, the caller's
interceptors on every call; and the credentials refuse a half configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.certs import Pem, make_pki
from meshkit.rpc.channels import ROUND_ROBIN, channel_credentials, open_channel
from meshkit.rpc.health import READINESS, AsyncHealthServicer

PKI = tuple[Pem, Pem, Pem]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _serve(credentials: grpc.ServerCredentials | None) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    health = AsyncHealthServicer()
    await health.set(READINESS, health_pb2.HealthCheckResponse.SERVING)  # what balanced channels watch
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, f"127.0.0.1:{port}"


async def _check(channel: grpc.aio.Channel) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    async with channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return reply.status


@pytest.fixture
async def plaintext() -> AsyncIterator[str]:
    server, target = await _serve(None)
    yield target
    await server.stop(None)


@pytest.fixture
async def mtls(pki: PKI) -> AsyncIterator[str]:
    ca, server_pem, _ = pki
    credentials = grpc.ssl_server_credentials(
        [(server_pem.key.read_bytes(), server_pem.cert.read_bytes())],
        root_certificates=ca.cert.read_bytes(),
        require_client_auth=True,
    )
    server, target = await _serve(credentials)
    yield target
    await server.stop(None)


class Counting(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]  # not generic at run time
    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        method = details.method
        self.methods.append(method.decode() if isinstance(method, bytes) else method)
        return await continuation(details, request)


async def test_plaintext_by_default_with_the_callers_options_and_interceptors(plaintext: str) -> None:
    counting = Counting()
    channel = open_channel(
        plaintext, options=(ROUND_ROBIN,), interceptors=(cast(grpc.aio.ClientInterceptor, counting),)
    )
    assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
    assert counting.methods == ["/grpc.health.v1.Health/Check"]


async def test_mtls_with_a_client_certificate(mtls: str, pki: PKI) -> None:
    ca, _, client = pki
    credentials = channel_credentials(ca.cert, client.cert, client.key)
    channel = open_channel(mtls, credentials=credentials, options=(ROUND_ROBIN,))
    assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("with_ca", [True, False], ids=["tls-without-client-cert", "plaintext"])
async def test_a_server_requiring_client_certificates_refuses_others(
    mtls: str, pki: PKI, with_ca: bool
) -> None:
    ca, _, _ = pki
    channel = open_channel(mtls, credentials=channel_credentials(ca.cert, None, None) if with_ca else None)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _check(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_no_files_mean_plaintext() -> None:
    assert channel_credentials(None, None, None) is None


@pytest.mark.parametrize(
    ("ca", "cert", "key", "message"),
    [
        (None, Path("c.crt"), Path("c.key"), "needs the CA file"),
        (Path("ca.crt"), Path("c.crt"), None, "both a client certificate and its private key"),
        (Path("ca.crt"), None, Path("c.key"), "both a client certificate and its private key"),
    ],
)
def test_half_configurations_are_refused(
    ca: Path | None, cert: Path | None, key: Path | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        channel_credentials(ca, cert, key)
