"""The gateway served with uvicorn (uvloop + httptools), over HTTPS when configured: what
``python -m gateway`` runs in a process that serves (:mod:`gateway.__main__`)."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import ssl
from types import FrameType
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.drain import Draining
from gateway.header_timeout import protocol_with_header_timeout
from gateway.processes import OperationsOnly, child_sockets
from meshkit.rpc.channels import channel_credentials
from meshkit.shutdown import ShutdownDeadline, accept_lead
from meshkit.supervisor import shared_port
from observability.telemetry import setup_telemetry


def tls_options(settings: GatewaySettings) -> dict[str, Any]:
    """uvicorn's ssl options: none for plain HTTP, HTTPS with a cert and key, client certs with a CA.

    Checked before anything starts, so a half configuration stops the process with a clear message."""
    cert, key, client_ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    if cert is None and key is None:
        if client_ca is not None:
            raise SystemExit("PORTICO_GATEWAY_TLS_CLIENT_CA_FILE needs TLS: set the certificate and key too")
        return {}
    if cert is None or key is None:
        raise SystemExit(
            "TLS needs both PORTICO_GATEWAY_TLS_CERT_FILE and PORTICO_GATEWAY_TLS_KEY_FILE; only one is set"
        )
    for path in (cert, key, client_ca):
        if path is not None and not path.is_file():
            raise SystemExit(f"TLS file not found: {path}")
    options: dict[str, Any] = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    if client_ca is not None:
        options |= {"ssl_ca_certs": str(client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options


class GatewayServer(uvicorn.Server):
    """uvicorn's server, with the shutdown deadline armed by the first SIGTERM or SIGINT: requests already
    sent are answered for a short lead (each answer closing its connection, :mod:`gateway.drain`), then
    in-flight requests get the rest of the grace (uvicorn's graceful timeout), and the process exits within
    the grace plus two seconds even if closing the connections or the lifespan's clients hangs."""

    def __init__(
        self, config: uvicorn.Config, deadline: ShutdownDeadline, draining: Draining | None = None
    ) -> None:
        super().__init__(config)
        self.deadline = deadline
        self.draining = draining

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.deadline.arm()
        self.deadline.enter("uvicorn shutdown (open requests, then the lifespan's clients)")
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.draining is not None and not self.force_exit:
            self.draining.start()
            await asyncio.sleep(accept_lead(self.deadline.grace))
        await super().shutdown(sockets)


def main(settings: GatewaySettings) -> None:
    """Serve until SIGTERM or SIGINT, as one process or as one of a supervisor's children."""
    try:  # a half-configured upstream mTLS stops the process here, not at the first request
        channel_credentials(
            settings.upstream_tls_ca_file, settings.upstream_tls_cert_file, settings.upstream_tls_key_file
        )
    except (ValueError, OSError) as exc:
        raise SystemExit(f"Upstream TLS: {exc}") from None
    tls = tls_options(settings)
    telemetry = setup_telemetry("portico-gateway", settings)
    # The Kafka readiness probe reports an unreachable broker through /ready; aiokafka's own
    # connection errors would repeat that on every probe.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    draining = Draining(create_app(settings))
    app: Any = draining
    sockets: list[socket.socket] | None = None
    if shared_port():  # one of a supervisor's children: the shared port, and its own for scrapes
        sockets, own = child_sockets(settings)
        app = OperationsOnly(draining, own)
    lead = accept_lead(settings.shutdown_grace)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools, with a deadline on each request's head: slow-header connections are closed.
        http=protocol_with_header_timeout(settings.header_timeout),
        # No route speaks WebSocket: an upgrade request is answered as the HTTP request it also is (in the
        # error envelope), and the websockets library is not loaded (2 MiB, 51 modules per process).
        ws="none",
        log_config=None,  # our JSON logging is already configured
        access_log=False,
        proxy_headers=False,  # X-Forwarded-For is trusted only from configured proxies, by the gateway
        server_header=False,  # no `server: uvicorn`: the gateway names no software (nor its version)
        # The drain lead comes out of the grace (uvicorn counts whole seconds).
        timeout_graceful_shutdown=max(1, math.floor(settings.shutdown_grace - lead)),
        **tls,
    )
    deadline = ShutdownDeadline(settings.shutdown_grace)
    try:
        GatewayServer(config, deadline, draining).run(sockets=sockets)
    finally:
        with deadline.step("telemetry shutdown (span export)"):
            telemetry.shutdown()
        deadline.enter("interpreter exit (worker threads)")
