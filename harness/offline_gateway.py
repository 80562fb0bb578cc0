"""Gateway settings whose every dependency points at a port nothing listens on: probes and calls fail
fast, Redis is down (so the limiter falls back or refuses, as configured)."""

from __future__ import annotations

from typing import Any

from gateway.config import GatewaySettings
from infra.local import free_port


def offline_settings(**overrides: Any) -> GatewaySettings:
    dead = f"127.0.0.1:{free_port()}"
    return GatewaySettings(
        users_target=dead,
        auth_target=dead,
        posts_target=dead,
        broker_target=dead,
        kafka_bootstrap=dead,
        redis_url=f"redis://{dead}/0",
        **overrides,
    )
