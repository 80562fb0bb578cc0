"""What a servicer reads from its call: metadata values, the client's address and the event actor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import cast

import grpc
import pytest
from pydantic import SecretStr

from meshkit.rpc.context import Context, actor, client_ip, forwarded_by_trusted, metadata_value
from meshkit.rpc.forwarding import ForwarderTrust, forwarder_metadata, onward_metadata
from meshkit.rpc.interceptors.forwarding import ForwardingInterceptor
from stubs.events.v1 import events_pb2


class FakeContext:
    """The two things the helpers read from a ``ServicerContext``."""

    def __init__(self, metadata: Sequence[tuple[str, str | bytes]] = (), peer: str = "") -> None:
        self._metadata = tuple(metadata)
        self._peer = peer

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer


def context(metadata: Sequence[tuple[str, str | bytes]] = (), peer: str = "") -> Context:
    return cast(Context, FakeContext(metadata, peer))


def test_metadata_value_is_the_first_text_value_or_empty() -> None:
    ctx = context([("x-request-id", "first"), ("x-request-id", "second"), ("x-bin", b"raw")])
    assert metadata_value(ctx, "x-request-id") == "first"
    assert metadata_value(ctx, "x-bin") == ""  # binary metadata is not text
    assert metadata_value(ctx, "absent") == ""


@pytest.fixture
def trusted() -> Iterator[None]:
    """The call comes from a trusted forwarder (what the forwarding interceptor decides per call)."""
    reset = forwarded_by_trusted.set(True)
    yield
    forwarded_by_trusted.reset(reset)


@pytest.mark.parametrize(
    ("metadata", "peer", "expected"),
    [
        ([("x-client-ip", "203.0.113.9")], "ipv4:127.0.0.1:5555", "203.0.113.9"),  # the gateway's word wins
        ([], "ipv4:192.0.2.1:40000", "192.0.2.1"),
        ([], "ipv6:[2001:db8::1]:40000", "2001:db8::1"),
        ([], "", ""),
        ([("x-client-ip", "9" * 100)], "", "9" * 64),  # caller-supplied: bounded
    ],
)
@pytest.mark.usefixtures("trusted")
def test_a_trusted_forwarders_address_wins_else_the_peer(
    metadata: list[tuple[str, str]], peer: str, expected: str
) -> None:
    assert client_ip(context(metadata, peer)) == expected


def test_an_untrusted_callers_forwarded_address_is_ignored() -> None:
    assert client_ip(context([("x-client-ip", "203.0.113.9")], "ipv4:192.0.2.1:40000")) == "192.0.2.1"


@pytest.mark.usefixtures("trusted")
def test_actor_names_the_user_the_request_and_the_client() -> None:
    ctx = context([("x-request-id", "r" * 200), ("x-client-ip", "198.51.100.4")])
    assert actor(ctx, "u-1") == events_pb2.Actor(
        user_id="u-1", request_id="r" * 128, client_ip="198.51.100.4"
    )
    assert actor(context(peer="ipv4:10.0.0.2:1")) == events_pb2.Actor(client_ip="10.0.0.2")


SERVICE = "portico.test.Who"
SECRET = "forwarding-secret-for-tests"  # noqa: S105 (a test value)


@pytest.fixture
async def who() -> AsyncIterator[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]:
    async def handler(request: bytes, context: Context) -> bytes:
        return actor(context, request.decode()).SerializeToString()

    server = grpc.aio.server(interceptors=[ForwardingInterceptor(ForwarderTrust(SECRET.encode()))])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {"Who": grpc.unary_unary_rpc_method_handler(handler)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary(f"/{SERVICE}/Who")
    await server.stop(None)


async def test_a_real_call_gives_its_peer_and_a_trusted_forwarders_metadata(
    who: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
) -> None:
    direct = events_pb2.Actor.FromString(await who(b"u-7"))
    assert (direct.user_id, direct.request_id, direct.client_ip) == ("u-7", "", "127.0.0.1")
    forged = events_pb2.Actor.FromString(
        await who(b"", metadata=(("x-request-id", "req-8"), ("x-client-ip", "203.0.113.5")))
    )
    assert (forged.request_id, forged.client_ip) == ("req-8", "127.0.0.1")  # no secret: its peer
    forwarded = events_pb2.Actor.FromString(
        await who(
            b"",
            metadata=(
                ("x-request-id", "req-9"),
                ("x-client-ip", "203.0.113.5"),
                *forwarder_metadata(SecretStr(SECRET)),
            ),
        )
    )
    assert (forwarded.user_id, forwarded.request_id, forwarded.client_ip) == ("", "req-9", "203.0.113.5")


def test_a_call_on_a_clients_behalf_forwards_the_address_this_backend_believes(trusted: None) -> None:
    secret = SecretStr("a-forwarding-secret-of-the-mesh")
    from_gateway = context([("x-client-ip", "203.0.113.9"), ("x-request-id", "r-1")], "ipv4:10.0.0.2:5555")
    assert onward_metadata(from_gateway, secret) == (
        ("x-request-id", "r-1"),
        ("x-client-ip", "203.0.113.9"),
        *forwarder_metadata(secret),
    )


def test_a_direct_callers_own_x_client_ip_is_not_forwarded_as_the_client() -> None:
    forged = context([("x-client-ip", "203.0.113.66")], "ipv4:192.0.2.1:40000")  # not a trusted forwarder
    assert onward_metadata(forged, None) == (("x-client-ip", "192.0.2.1"),)  # its peer address, no id
