"""Opening ``grpc.aio`` client channels: one factory for the gateway's upstreams and a backend's calls to
another backend, so both get TLS or mTLS the same way when it is configured.

What differs between callers (channel options, client interceptors, credentials) is passed in;
without credentials the channel is plaintext, which is how backends call each other by default. A
backend's credentials come from ``PORTICO_PEER_TLS_*`` (:func:`peer_credentials`), the gateway's from
``PORTICO_GATEWAY_UPSTREAM_TLS_*``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from meshkit.config.peers import PeerTls
from meshkit.rpc.health import READINESS

ChannelOption = tuple[str, Any]

# Every balanced channel watches each address's grpc.health.v1 status (gRPC's client-side health
# checking, gRFC A17) and sends calls only to the addresses that are SERVING: a backend turns NOT_SERVING
# when it cannot serve (its database is down) and as its drain begins, so its open connection stops
# getting calls at once. The name is the kit's READINESS, not "" (which grpcio takes as no health
# checking); a server without the health service counts as healthy, one without this name as not.
# grpcio 1.76's aio channels crashed the process (a segmentation fault) when they watched health; 1.80
# does not (tests/integration/gateway/test_streaming.py: 2 crashes in 3 runs before, 0 in 10 after).
_HEALTH_CHECK = {"healthCheckConfig": {"serviceName": READINESS}}


def _service_config(**extra: Any) -> ChannelOption:
    config = {"loadBalancingConfig": [{"round_robin": {}}], **_HEALTH_CHECK, **extra}
    return ("grpc.service_config", json.dumps(config))


# Spread calls over every address the target resolves to (``dns:///name:port``, ``ipv4:a:p,b:p``),
# instead of pinning the first one, skipping those whose health is not SERVING.
ROUND_ROBIN: ChannelOption = _service_config()

# A backend's channel to another backend. A call waits for a peer that is starting or restarting (within
# its own deadline) instead of failing at once, and the connection is retried at least every second: with
# gRPC's default back-off (up to two minutes) a peer that served late stayed unused for many seconds after
# it came up, and every call meanwhile failed with UNAVAILABLE at once.
PEER_OPTIONS: tuple[ChannelOption, ...] = (
    _service_config(methodConfig=[{"name": [{}], "waitForReady": True}]),
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
        raise ValueError("mTLS needs both a client certificate and its private key file")
    if ca_file is None:
        if cert_file is not None:
            raise ValueError("mTLS needs the CA file that signed the backends' certificates")
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes(),
        private_key=key_file.read_bytes() if key_file else None,
        certificate_chain=cert_file.read_bytes() if cert_file else None,
    )


def peer_credentials(settings: PeerTls) -> grpc.ChannelCredentials | None:
    """A backend's credentials for its peers and its JWKS source (``PORTICO_PEER_TLS_*``)."""
    try:
        return channel_credentials(
            settings.peer_tls_ca_file, settings.peer_tls_cert_file, settings.peer_tls_key_file
        )
    except ValueError as exc:
        raise ValueError(f"PORTICO_PEER_TLS_*: {exc}") from None


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
