"""``python -m backends.broker``: serve ``broker.v1.MessageService`` until SIGTERM.

Only the settings are read before this process decides to serve or to supervise copies of itself
(``PORTICO_BROKER_PROCESSES`` > 1): a supervisor never imports the backend (:mod:`meshkit.supervisor`).
"""

from __future__ import annotations

from backends.broker.config import BrokerSettings
from meshkit.shutdown import exit_now
from meshkit.supervisor import supervise_backend

if __name__ == "__main__":
    status = supervise_backend(BrokerSettings(), "broker")
    if status is not None:
        exit_now(status)
    from backends.broker.wiring import SPEC
    from meshkit.rpc.server import run_backend

    run_backend(SPEC)
