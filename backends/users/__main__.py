"""``python -m backends.users``: serve ``users.v1.UserService`` until SIGTERM.

Only the settings are read before this process decides to serve or to supervise copies of itself
(``PORTICO_USERS_PROCESSES`` > 1): a supervisor never imports the backend (:mod:`meshkit.supervisor`).
"""

from __future__ import annotations

from backends.users.config import UsersSettings
from meshkit.shutdown import exit_now
from meshkit.supervisor import supervise_backend

if __name__ == "__main__":
    status = supervise_backend(UsersSettings(), "users")
    if status is not None:
        exit_now(status)
    from backends.users.wiring import SPEC
    from meshkit.rpc.server import run_backend

    run_backend(SPEC)
