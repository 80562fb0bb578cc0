"""One long-lived ``grpc.aio`` channel per backend, round robin over the target's resolved addresses."""

from __future__ import annotations

import json

import grpc

# Retries are limited to transient failures; which methods may retry is decided per route elsewhere.
_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def open_channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ],
    )


class Upstreams:
    """The backends' channels, opened in the lifespan and closed on shutdown."""

    def __init__(self, targets: dict[str, str]) -> None:
        self.channels = {name: open_channel(target) for name, target in targets.items()}

    def for_service(self, full_name: str) -> grpc.aio.Channel:
        """The channel of the backend serving ``full_name`` (``users.v1.UserService`` → users)."""
        return self.channels[full_name.split(".", 1)[0]]

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(grace=None)
