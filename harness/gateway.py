"""The gateway in tests: whether a running one is ready, another one in front of a mesh's backends with
settings of its own, and settings for one with no dependencies.

:func:`offline_settings` points every dependency at a port nothing listens on: probes and calls fail
fast, Redis is down (so the limiter falls back or refuses, as configured).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from gateway.config import GatewaySettings
from harness.processes import spawn, wait_until
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


@contextmanager
def extra_gateway(env: Mapping[str, str], log_dir: Path, **settings: str) -> Iterator[str]:
    """Another gateway in front of the same backends: ``env`` (a mesh's) with ``settings`` on top and a
    free port; yields its URL once it is ready, stops it on exit."""
    port = free_port()
    full = {**env, **settings, "PORTICO_GATEWAY_PORT": str(port)}
    proc = spawn(f"gateway-{port}", ["-m", "gateway"], full, log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: gateway_ready(url), 60, f"the gateway on port {port}")
        yield url
    finally:
        proc.terminate()
