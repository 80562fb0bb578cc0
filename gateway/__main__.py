"""``python -m gateway``: serve the gateway with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import logging

import uvicorn

from gateway.app import create_app
from gateway.config import GatewaySettings
from observability.telemetry import setup_telemetry


def main() -> None:
    settings = GatewaySettings()
    telemetry = setup_telemetry("portico-gateway")
    # The Kafka readiness probe reports an unreachable broker through /ready; aiokafka's own
    # connection errors would repeat that on every probe.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,  # our JSON logging is already configured
        access_log=False,
        proxy_headers=False,  # X-Forwarded-For is trusted only from configured proxies, by the gateway
        timeout_graceful_shutdown=10,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
