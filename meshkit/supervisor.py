"""Several serving processes of one kind on one host: a small supervisor that binds nothing itself.

With ``PORTICO_<PROCESS>_PROCESSES=N`` (N > 1) ``python -m gateway`` or ``python -m backends.<name>``
becomes this supervisor: it checks that no other program holds the listening ports, starts N copies of
its own command line, each with ``PORTICO_PROCESS_INDEX`` set, and each child binds the shared port with
``SO_REUSEPORT`` (the kernel spreads new connections over them) and its own metrics port (``base + index``).

- SIGTERM or SIGINT to the supervisor is passed to every child, which drains as a single process does;
  the supervisor exits 0 once all have stopped cleanly (exit 0, or the signal uvicorn re-raises).
- A child that exits on its own (a failed start, a crash, SIGKILL) is not restarted: the others are
  stopped as on SIGTERM and the supervisor exits 1, so the process manager above (``make up``'s
  Procfile runner, systemd, Kubernetes) sees the failure and restarts the whole, as it would one process.
- The children are in a process group of their own (a terminal's Ctrl-C or a group signal reaches them
  once, through the supervisor) and get SIGTERM if the supervisor dies.

A backend on SQLite is refused N > 1 (exit 1): SQLite serves one process (:mod:`meshkit.db.single_replica`).

With N = 1 none of this runs: the process serves itself and binds without ``SO_REUSEPORT``.

The entry points decide from their settings alone, before importing the server: a supervisor loads
pydantic and this module, not gRPC, the database or the app (``backends/<name>/__main__.py``,
``gateway/__main__.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshkit.config.serve import ServeSettings

log = logging.getLogger(__name__)

INDEX_ENV = "PORTICO_PROCESS_INDEX"
# meshkit.db.single_replica.REFUSAL, without importing SQLAlchemy into the supervisor.
SQLITE_REFUSAL = "SQLite serves one replica; use PostgreSQL (PORTICO_DATABASE_URL) for more"
_PR_SET_PDEATHSIG = 1


def process_index() -> int | None:
    """This process's index among its supervisor's children; None when it runs alone."""
    value = os.environ.get(INDEX_ENV)
    return int(value) if value else None


def shared_port() -> bool:
    """Whether this process binds its serving port together with siblings (``SO_REUSEPORT``)."""
    return process_index() is not None


def own_port(base: int) -> int:
    """This process's own port from ``base`` (its metrics port): ``base + index``, ``base`` alone."""
    return base + (process_index() or 0)


def port_in_use(host: str, port: int) -> bool:
    """Whether another socket holds ``host:port``: a bind without ``SO_REUSEPORT`` fails against any
    listener, including one that shares its port with ``SO_REUSEPORT`` (another supervisor's)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        # SO_REUSEADDR as servers set it: a port with connections in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def _die_with_parent(parent: int) -> None:
    """In the child before exec: SIGTERM when the supervisor dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)


def supervise(
    count: int, host: str, ports: Sequence[int], what: str, argv: Sequence[str] | None = None
) -> int:
    """Run ``count`` copies of this command line (or ``argv``) until they exit; returns the exit status
    (see above).

    ``ports`` are checked free first (the shared port and every child's own ports), so a port held by
    another program stops the start with a clear message instead of being shared or failing in a child.
    """
    for port in ports:
        if port_in_use(host, port):
            log.error("port in use", extra={"kind": what, "host": host, "port": port})
            print(f"{what}: {host}:{port} is already in use", file=sys.stderr)
            return 1
    parent = os.getpid()
    argv = list(argv) if argv is not None else [sys.executable, *sys.orig_argv[1:]]
    children: dict[int, subprocess.Popen[bytes]] = {}
    for index in range(count):
        child = subprocess.Popen(
            argv,
            env={**os.environ, INDEX_ENV: str(index)},
            process_group=0,
            preexec_fn=lambda: _die_with_parent(parent),
        )
        children[child.pid] = child
    log.info("supervising", extra={"kind": what, "children": sorted(children)})
    return _wait(children, what)


def supervise_backend(settings: ServeSettings, what: str) -> int | None:
    """The children's exit status once they have ended, when ``settings`` ask for several processes
    and this process is no supervisor's child; None when this process serves by itself."""
    if settings.processes <= 1 or process_index() is not None:
        return None
    if _on_sqlite(settings):
        # The children would share one SQLite file: each holds it alone (meshkit.db.single_replica).
        log.error("several processes on SQLite", extra={"kind": what, "processes": settings.processes})
        print(f"{what}: {SQLITE_REFUSAL}", file=sys.stderr)
        return 1
    ports = [settings.port, *(settings.metrics_port + index for index in range(settings.processes))]
    return supervise(settings.processes, settings.host, ports, what)


def _on_sqlite(settings: ServeSettings) -> bool:
    """Whether the backend keeps tables in SQLite (its URL, or the SQLite file it defaults to)."""
    from meshkit.config.stores import DatabaseSettings  # pydantic only, as the settings themselves

    if not isinstance(settings, DatabaseSettings):
        return False
    return (settings.database_url or "sqlite").startswith("sqlite")


def _wait(children: dict[int, subprocess.Popen[bytes]], what: str) -> int:
    status = 0
    stopping = False

    def forward(sig: int, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    live = set(children)
    while live:
        try:
            pid, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid not in live:
            continue
        live.discard(pid)
        code = os.waitstatus_to_exitcode(wait_status)
        children[pid].returncode = code
        # uvicorn ends by re-raising the signal it handled: dying of it after a forward is a clean stop.
        if not stopping or code not in (0, -signal.SIGTERM, -signal.SIGINT):
            log.error("child exited", extra={"kind": what, "pid": pid, "exit_code": code})
            status = 1
            if not stopping:  # one child is gone: stop the others, the whole is restarted above
                forward(signal.SIGTERM)
    return status


def listen_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound TCP socket for a server that takes sockets (uvicorn); ``reuse_port`` for a shared port."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock
