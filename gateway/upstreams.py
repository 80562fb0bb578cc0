"""One long-lived ``grpc.aio`` channel per backend, round robin over the target's resolved addresses,
over TLS (with a client certificate for backends that require mTLS) when configured."""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from gateway.config import GatewaySettings

# Retries are limited to transient failures; which methods may retry is decided per route elsewhere.
_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
_OPTIONS = [
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
]


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


def open_channel(target: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=_OPTIONS)
    return grpc.aio.secure_channel(target, credentials, options=_OPTIONS)


class Upstreams:
    """The backends' channels, opened in the lifespan and closed on shutdown."""

    def __init__(self, targets: dict[str, str], credentials: grpc.ChannelCredentials | None = None) -> None:
        self.channels = {name: open_channel(target, credentials) for name, target in targets.items()}

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Upstreams:
        credentials = channel_credentials(
            settings.upstream_tls_ca_file, settings.upstream_tls_cert_file, settings.upstream_tls_key_file
        )
        return cls(settings.upstream_targets(), credentials)

    def for_service(self, full_name: str) -> grpc.aio.Channel:
        """The channel of the backend serving ``full_name`` (``users.v1.UserService`` → users)."""
        return self.channels[full_name.split(".", 1)[0]]

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(grace=None)
