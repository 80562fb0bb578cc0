"""What a servicer reads from its call: the one ``Context`` alias and the metadata the gateway forwards.

The gateway passes the request id as ``x-request-id`` and the client's address as ``x-client-ip``;
:func:`actor` turns them into the ``events.v1.Actor`` every audit and domain event carries. The address
is believed only from a trusted forwarder (:mod:`meshkit.rpc.forwarding`, decided per call by
:class:`~meshkit.rpc.interceptors.forwarding.ForwardingInterceptor`); anyone else is its peer address.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import grpc

from stubs.events.v1 import events_pb2

__all__ = ["Context", "actor", "client_ip", "forwarded_by_trusted", "metadata_value"]

Context = grpc.aio.ServicerContext[Any, Any]

# Bounds of the Actor fields: metadata is caller-supplied, events are stored and published.
REQUEST_ID_CHARS = 128
CLIENT_IP_CHARS = 64

# Whether the call being handled comes from a trusted forwarder; set per call by the forwarding
# interceptor. Outside such a call (no interceptor, a background task) nothing forwarded is believed.
forwarded_by_trusted: ContextVar[bool] = ContextVar("portico_forwarded_by_trusted", default=False)


def metadata_value(context: Context, key: str) -> str:
    """The first text value of invocation metadata ``key`` ("" when absent)."""
    for name, value in context.invocation_metadata() or ():
        if name == key and isinstance(value, str):
            return value
    return ""


def client_ip(context: Context) -> str:
    """The client's address: ``x-client-ip`` from a trusted forwarder (the gateway), else the peer."""
    forwarded = metadata_value(context, "x-client-ip") if forwarded_by_trusted.get() else ""
    if forwarded:
        return forwarded[:CLIENT_IP_CHARS]
    peer = context.peer() or ""  # "ipv4:127.0.0.1:5555" / "ipv6:[::1]:5555"
    host = peer.partition(":")[2].rpartition(":")[0]
    return host.strip("[]")[:CLIENT_IP_CHARS]


def actor(context: Context, user_id: str = "") -> events_pb2.Actor:
    """Who caused an event: ``user_id`` (empty when nobody is signed in), the request and the client."""
    return events_pb2.Actor(
        user_id=user_id,
        request_id=metadata_value(context, "x-request-id")[:REQUEST_ID_CHARS],
        client_ip=client_ip(context),
    )
