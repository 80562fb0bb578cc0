"""A backend built on the kit that hosts one slow RPC, to test graceful shutdown for real.

``portico.test.Slow/Sleep`` sleeps for the number of milliseconds in the request (ASCII digits) and
answers ``done``; the server is the kit's, with its signals, health and drain behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from pydantic_settings import SettingsConfigDict

from meshkit.config.settings import BackendSettings
from meshkit.rpc.server import BackendSpec, Runtime, Service, run_backend

SERVICE = "portico.test.Slow"


class SlowSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_SLOW_", extra="ignore", populate_by_name=True)


async def sleep(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await asyncio.sleep(int(request) / 1000)
    return b"done"


def services(runtime: Runtime) -> Sequence[Service]:
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {"Sleep": grpc.unary_unary_rpc_method_handler(sleep)},
    )
    return [Service(SERVICE, lambda server: server.add_generic_rpc_handlers((handler,)))]


if __name__ == "__main__":
    run_backend(BackendSpec("slow", SlowSettings(), services))  # type: ignore[call-arg]
