"""A backend built on the kit that hosts one slow RPC, to test graceful shutdown for real.

``portico.test.Slow/Sleep`` sleeps for the number of milliseconds in the request (ASCII digits) and
answers ``done``; the server is the kit's, with its signals, health and drain behaviour.
``PORTICO_SLOW_HANG_ON_SHUTDOWN`` makes its shutdown hang: ``await`` in a close that never ends,
``block`` in one that blocks the event loop itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Literal

import grpc

from meshkit.config.base import settings_config
from meshkit.config.serve import BackendSettings
from meshkit.rpc.context import Context
from meshkit.rpc.runtime import BackendSpec, Runtime, Service
from meshkit.rpc.server import run_backend

SERVICE = "portico.test.Slow"


class SlowSettings(BackendSettings):
    model_config = settings_config("slow")

    # Tests pass free ports; 0 lets the system pick one when they do not.
    port: int = 0
    metrics_port: int = 0
    hang_on_shutdown: Literal["", "await", "block"] = ""


async def sleep(request: bytes, context: Context) -> bytes:
    await asyncio.sleep(int(request) / 1000)
    return b"done"


async def never_closes() -> None:
    await asyncio.Event().wait()


async def blocks_the_loop() -> None:
    time.sleep(3600)  # noqa: ASYNC251 (the point: a close that holds the event loop)


def services(runtime: Runtime[SlowSettings]) -> Sequence[Service]:
    hang = runtime.settings.hang_on_shutdown
    if hang:
        runtime.on_shutdown(never_closes if hang == "await" else blocks_the_loop)
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {"Sleep": grpc.unary_unary_rpc_method_handler(sleep)},
    )
    return [Service(SERVICE, lambda server: server.add_generic_rpc_handlers((handler,)))]


if __name__ == "__main__":
    run_backend(BackendSpec("slow", SlowSettings, services))
