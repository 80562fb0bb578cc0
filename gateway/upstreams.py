"""One long-lived ``grpc.aio`` channel per backend, round robin over the target's resolved addresses
whose health is SERVING, over TLS (with a client certificate for backends that require mTLS) when
configured; and each route's callable on it, made once per route rather than per request."""

from __future__ import annotations

import weakref
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.message import Message

from gateway.config import GatewaySettings
from gateway.routing.rules import Route
from meshkit.config.defaults import GRPC_MAX_MESSAGE_BYTES
from meshkit.rpc.channels import ROUND_ROBIN, ChannelOption, channel_credentials, open_channel

MAX_RECONNECT_BACKOFF_MS = 2_000

# Retries are limited to transient failures; which methods may retry is decided per route elsewhere.
_OPTIONS: tuple[ChannelOption, ...] = (
    ROUND_ROBIN,
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
    # gRPC's reconnect back-off grows to 120 s by default: a backend back after a restart of 20 s waited
    # up to 10 s more for the gateway to try again. Capped, its routes answer within ~2 s of it serving.
    ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


class Upstreams:
    """The backends' channels, opened in the lifespan and closed on shutdown."""

    def __init__(self, targets: dict[str, str], credentials: grpc.ChannelCredentials | None = None) -> None:
        self.channels = {
            name: open_channel(target, credentials=credentials, options=_OPTIONS)
            for name, target in targets.items()
        }
        # By route (weakly): a refreshed table's routes take their old callables, and descriptor pools,
        # with them.
        self._unary: weakref.WeakKeyDictionary[Route, grpc.aio.UnaryUnaryMultiCallable[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Upstreams:
        credentials = channel_credentials(
            settings.upstream_tls_ca_file, settings.upstream_tls_cert_file, settings.upstream_tls_key_file
        )
        return cls(settings.upstream_targets(), credentials)

    def for_route(self, route: Route) -> grpc.aio.Channel:
        """The channel of the backend that reflected the route's service (``Route.upstream``)."""
        return self.channels[route.upstream]

    def unary_unary(self, route: Route) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
        """The route's unary callable: request serialized, reply parsed as the route's output type."""
        call = self._unary.get(route)
        if call is None:
            call = self._unary[route] = self.for_route(route).unary_unary(
                route.grpc_method,
                request_serializer=_serialize,
                response_deserializer=message_factory.GetMessageClass(route.output).FromString,
            )
        return call

    def unary_stream(self, route: Route) -> grpc.aio.UnaryStreamMultiCallable[Any, Any]:
        """The route's server-streaming callable (streams are long; not worth keeping)."""
        return self.for_route(route).unary_stream(
            route.grpc_method,
            request_serializer=_serialize,
            response_deserializer=message_factory.GetMessageClass(route.output).FromString,
        )

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(grace=None)
