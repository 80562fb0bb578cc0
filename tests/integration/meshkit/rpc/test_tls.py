"""Optional TLS and mTLS on a kit backend, checked with real handshakes."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.backends import spawn_backend
from harness.certs import Pem, make_pki
from harness.infra import InfraEnv
from harness.processes import Proc, wait_until

pytestmark = pytest.mark.infra


def _check(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return int(reply.status)


def _secure(target: str, ca: Pem, client: Pem | None = None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )
    return grpc.secure_channel(target, credentials)


def _answers(target: str, ca: Pem, client: Pem | None = None) -> bool:
    try:
        with _secure(target, ca, client) as channel:
            _check(channel)
    except grpc.RpcError:
        return False
    return True


def _start(infra: InfraEnv, tmp_path: Path, tls: dict[str, str]) -> tuple[Proc, str]:
    env = {**infra.env(), **{f"PORTICO_SLOW_{key}": value for key, value in tls.items()}}
    # Not start_backend: its plaintext health check cannot reach a TLS-only server.
    slow = spawn_backend("slow", env, tmp_path, module="harness.programs.slow_backend")
    return slow.proc, slow.target


def test_tls_serves_only_tls(infra: InfraEnv, tmp_path: Path) -> None:
    ca, server, _ = make_pki(tmp_path)
    proc, target = _start(
        infra, tmp_path, {"TLS_CERT_FILE": str(server.cert), "TLS_KEY_FILE": str(server.key)}
    )
    try:
        wait_until(lambda: _answers(target, ca), 60, "TLS backend")
        with _secure(target, ca) as channel:
            assert _check(channel) in (
                health_pb2.HealthCheckResponse.SERVING,
                health_pb2.HealthCheckResponse.NOT_SERVING,
            )
        with grpc.insecure_channel(target) as plain, pytest.raises(grpc.RpcError) as refused:
            _check(plain)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        proc.terminate()


def test_mtls_requires_a_client_certificate_from_the_ca(infra: InfraEnv, tmp_path: Path) -> None:
    ca, server, client = make_pki(tmp_path)
    proc, target = _start(
        infra,
        tmp_path,
        {
            "TLS_CERT_FILE": str(server.cert),
            "TLS_KEY_FILE": str(server.key),
            "TLS_CLIENT_CA_FILE": str(ca.cert),
        },
    )
    try:
        wait_until(lambda: _answers(target, ca, client), 60, "mTLS backend")
        assert not _answers(target, ca), "a client without a certificate must be refused"
        other = tmp_path / "other"
        other.mkdir()
        _, _, stranger = make_pki(other)
        assert not _answers(target, ca, stranger), "a certificate from another CA must be refused"
    finally:
        proc.terminate()
