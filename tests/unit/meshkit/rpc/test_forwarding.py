"""Whose x-client-ip a backend believes: the forwarding secret, an mTLS identity, or nobody's."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import grpc
import pytest
from pydantic import SecretStr

from harness.certs import Pem, make_pki
from meshkit.config.serve import ForwardingSettings
from meshkit.rpc.context import Context, actor
from meshkit.rpc.forwarding import FORWARDER_KEY, ForwarderTrust, forwarder_metadata
from meshkit.rpc.interceptors.forwarding import ForwardingInterceptor
from stubs.events.v1 import events_pb2

SECRET = "a-forwarding-secret-of-the-mesh"  # noqa: S105 (a test value)
FORGED = "203.0.113.66"


class FakeContext:
    """What the trust decision reads from a ``ServicerContext``."""

    def __init__(self, metadata: Sequence[tuple[str, str]] = (), identities: Sequence[bytes] = ()) -> None:
        self._metadata = tuple(metadata)
        self._identities = list(identities) or None  # None: no verified client certificate

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer_identities(self) -> list[bytes] | None:
        return self._identities


def context(metadata: Sequence[tuple[str, str]] = (), identities: Sequence[bytes] = ()) -> Context:
    return cast(Context, FakeContext(metadata, identities))


@pytest.mark.parametrize(
    ("presented", "trusted"),
    [
        (SECRET, True),
        (SECRET + "x", False),
        (SECRET[:-1], False),
        ("", False),
        (None, False),
    ],
)
def test_the_secret_must_match_exactly(presented: str | None, trusted: bool) -> None:
    metadata = [("x-client-ip", FORGED)] + ([(FORWARDER_KEY, presented)] if presented is not None else [])
    assert ForwarderTrust(SECRET.encode()).trusts(context(metadata)) is trusted


def test_without_a_configured_secret_no_presented_one_is_believed() -> None:
    assert not ForwarderTrust().trusts(context([(FORWARDER_KEY, ""), ("x-client-ip", FORGED)]))
    assert not ForwarderTrust(identities=frozenset({"gateway"})).trusts(context([(FORWARDER_KEY, SECRET)]))


@pytest.mark.parametrize(
    ("identities", "trusted"),
    [
        ([b"gateway.portico.svc"], True),
        ([b"other.portico.svc", b"gateway.portico.svc"], True),
        ([b"posts.portico.svc"], False),
        ([], False),  # plaintext or TLS without a client certificate
    ],
)
def test_an_mtls_identity_must_be_listed(identities: list[bytes], trusted: bool) -> None:
    trust = ForwarderTrust(identities=frozenset({"gateway.portico.svc"}))
    assert trust.trusts(context(identities=identities)) is trusted


def test_settings_name_the_secret_and_the_identities() -> None:
    settings = ForwardingSettings(
        forwarding_secret=SecretStr(SECRET), trusted_forwarders=" gateway , edge.example ,, "
    )
    trust = ForwarderTrust.from_settings(settings)
    assert trust == ForwarderTrust(SECRET.encode(), frozenset({"gateway", "edge.example"}))
    assert SECRET not in repr(trust)
    assert not ForwarderTrust.from_settings(ForwardingSettings()).configured


def test_a_forwarder_sends_the_secret_only_when_it_has_one() -> None:
    assert forwarder_metadata(SecretStr(SECRET)) == ((FORWARDER_KEY, SECRET),)
    assert forwarder_metadata(None) == ()


def test_the_start_log_says_how_addresses_are_decided_and_never_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="meshkit.rpc.forwarding")
    ForwarderTrust().log_at_start(mtls=False)
    assert "x-client-ip is ignored" in caplog.text
    caplog.clear()
    ForwarderTrust(b"short", frozenset({"gateway"})).log_at_start(mtls=False)
    messages = [record.getMessage() for record in caplog.records]
    assert any("is short" in m for m in messages)
    assert any("needs mTLS" in m for m in messages)
    caplog.clear()
    ForwarderTrust(SECRET.encode()).log_at_start(mtls=False)
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert all(SECRET not in f"{r.getMessage()} {vars(r)}" for r in caplog.records)


# -- a real mTLS handshake: the identity gRPC verified is the one trusted --------------------------

SERVICE = "portico.test.Who"


async def _serve_who(trust: ForwarderTrust, ca: Pem, server_pem: Pem) -> tuple[grpc.aio.Server, int]:
    async def handler(request: bytes, context: Context) -> bytes:
        return actor(context).SerializeToString()

    server = grpc.aio.server(interceptors=[ForwardingInterceptor(trust)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {"Who": grpc.unary_unary_rpc_method_handler(handler)}
            ),
        )
    )
    credentials = grpc.ssl_server_credentials(
        [(server_pem.key.read_bytes(), server_pem.cert.read_bytes())],
        root_certificates=ca.cert.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port


async def _client_ip_seen(port: int, ca: Pem, client: Pem) -> str:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert.read_bytes(),
        private_key=client.key.read_bytes(),
        certificate_chain=client.cert.read_bytes(),
    )
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        reply = await channel.unary_unary(f"/{SERVICE}/Who")(
            b"", metadata=(("x-client-ip", FORGED),), timeout=10
        )
    return events_pb2.Actor.FromString(reply).client_ip


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Pem, Pem, Pem]:
    return make_pki(tmp_path)  # the client certificate's identity is its CN, "client"


@pytest.mark.parametrize(("listed", "seen"), [("client", FORGED), ("gateway", "127.0.0.1")])
async def test_over_mtls_only_a_listed_certificate_forwards(
    pki: tuple[Pem, Pem, Pem], listed: str, seen: str
) -> None:
    ca, server_pem, client = pki
    server, port = await _serve_who(ForwarderTrust(identities=frozenset({listed})), ca, server_pem)
    try:
        assert await _client_ip_seen(port, ca, client) == seen
    finally:
        await server.stop(None)
