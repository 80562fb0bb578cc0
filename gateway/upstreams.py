"""One long-lived ``grpc.aio`` channel per backend, round robin over the target's resolved addresses,
over TLS (with a client certificate for backends that require mTLS) when configured."""

from __future__ import annotations

import grpc

from gateway.config import GatewaySettings
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


class Upstreams:
    """The backends' channels, opened in the lifespan and closed on shutdown."""

    def __init__(self, targets: dict[str, str], credentials: grpc.ChannelCredentials | None = None) -> None:
        self.channels = {
            name: open_channel(target, credentials=credentials, options=_OPTIONS)
            for name, target in targets.items()
        }

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
