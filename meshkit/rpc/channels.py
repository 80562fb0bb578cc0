"""Opening ``grpc.aio`` client channels: one factory for the gateway's upstreams and a backend's calls to
another backend, so both get TLS or mTLS the same way when it is configured.

What differs between callers (channel options, client interceptors, credentials) is passed in;
without credentials the channel is plaintext, which is how backends call each other by default.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

ChannelOption = tuple[str, Any]

# Spread calls over every address the target resolves to, instead of pinning the first one.
ROUND_ROBIN: ChannelOption = (
    "grpc.service_config",
    json.dumps({"loadBalancingConfig": [{"round_robin": {}}]}),
)

# A backend's channel to another backend. A call waits for a peer that is starting or restarting (within
# its own deadline) instead of failing at once, and the connection is retried at least every second: with
# gRPC's default back-off (up to two minutes) a peer that served late stayed unused for many seconds after
# it came up, and every call meanwhile failed with UNAVAILABLE at once.
PEER_OPTIONS: tuple[ChannelOption, ...] = (
    (
        "grpc.service_config",
        json.dumps(
            {
                "loadBalancingConfig": [{"round_robin": {}}],
                "methodConfig": [{"name": [{}], "waitForReady": True}],
            }
        ),
    ),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


def channel_credentials(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> grpc.ChannelCredentials | None:
    """None for plaintext; TLS trusting ``ca_file``; plus a client certificate when both files are set.

    The client side of ``meshkit.rpc.tls.server_credentials`` (the backends' ``PORTICO_*_TLS_*``)."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("Upstream mTLS needs both a client certificate and its private key file")
    if ca_file is None:
        if cert_file is not None:
            raise ValueError("Upstream mTLS needs the CA file that signed the backends' certificates")
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes(),
        private_key=key_file.read_bytes() if key_file else None,
        certificate_chain=cert_file.read_bytes() if cert_file else None,
    )


def open_channel(
    target: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[ChannelOption] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """A channel to ``target``: over TLS with ``credentials``, plaintext without them."""
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)
