"""``python -m gateway``: serve the gateway (:mod:`gateway.serve`) until SIGTERM.

Only the settings are read before this process decides to serve or to supervise copies of itself
(``PORTICO_GATEWAY_PROCESSES`` > 1): a supervisor never imports uvicorn, gRPC or the app
(:mod:`meshkit.supervisor`); each child checks the TLS settings as a single process does.
"""

from __future__ import annotations

from gateway.config import GatewaySettings
from gateway.processes import supervised_ports
from meshkit.supervisor import process_index, supervise

if __name__ == "__main__":
    settings = GatewaySettings()
    if settings.processes > 1 and process_index() is None:  # N children serve; this process binds nothing
        raise SystemExit(supervise(settings.processes, settings.host, supervised_ports(settings), "gateway"))
    from gateway.serve import main

    main(settings)
