"""The gateway in tests: whether a running one is ready, and settings for one with no dependencies.

:func:`offline_settings` points every dependency at a port nothing listens on: probes and calls fail
fast, Redis is down (so the limiter falls back or refuses, as configured).
"""

from __future__ import annotations

from typing import Any

import httpx

from gateway.config import GatewaySettings
from infra.procs import free_port


def gateway_ready(url: str) -> bool:
    """True when the gateway at ``url`` is ready with every dependency up (``/ready`` 200 and
    ``"status": "ready"``, not ``"degraded"``): a test starts against the whole mesh."""
    try:
        response = httpx.get(f"{url}/ready", timeout=3)
        return response.status_code == 200 and response.json().get("status") == "ready"
    except (httpx.HTTPError, ValueError):
        return False


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
