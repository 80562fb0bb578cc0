"""Process helpers shared by the servers: spawn in a new session, stop the whole group, poll, ports."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

Popen = subprocess.Popen[bytes]


# Ports this process already handed out: the OS may offer a just-closed port again at once, so two calls
# in a row (a broker's listener and its controller, say) could otherwise get the same one.
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback TCP port that is free right now and not handed out before by this process (the OS picks
    it, so parallel runs do not collide)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (sockets held open together, so no port is returned twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        ports = [int(sock.getsockname()[1]) for sock in socks]
        _handed_out.update(ports)
        return ports


def free_port_range(count: int, attempts: int = 100) -> int:
    """The first of ``count`` consecutive loopback TCP ports that are all free right now (a supervisor's
    children take a base port + i; the OS only vouches for the one port it hands out)."""
    for _ in range(attempts):
        base = free_port()
        if base + count > 65536:
            continue
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)).bind(
                        ("127.0.0.1", port)
                    )
            except OSError:
                continue
            return base
    raise RuntimeError(f"no {count} consecutive free loopback ports found in {attempts} tries")


def as_user(argv: Sequence[str], user: str | None) -> list[str]:
    """`argv` run as `user` (its own uid, primary gid, no supplementary groups) through setpriv, which execs.

    Why not Popen's `user=`: a uid change makes Python fork() instead of vfork(). fork() runs the parent's
    pthread_atfork handlers in the child, and gRPC's (the test process holds live channels) restarted its
    poller threads there, which then crashed on the descriptors closed before exec: the child died of
    SIGSEGV before it ever became the server (seen once on a loaded CI run). vfork() runs no handlers.
    """
    if user is None:
        return list(argv)
    import pwd

    entry = pwd.getpwnam(user)
    return [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--clear-groups",
        "--",
        *argv,
    ]


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> Popen:
    """Start `argv` in its own session (so stop() can signal the whole group), output appended to log_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        return subprocess.Popen(
            as_user(argv, user),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def ephemeral_port_floor() -> int:
    """The first port the kernel picks connection source ports from."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def peer_port_range(count: int, attempts: int = 200) -> int:
    """Like :func:`free_port_range`, but below the kernel's source-port range: for servers that dial each
    other before all of them listen (a KRaft quorum). Dialling a port in that range where nothing listens
    yet can get that very port as the source, and TCP then connects the socket to itself; a Kafka
    controller reading its own request back as the answer exits (seen on the loaded CI machine)."""
    high = ephemeral_port_floor() - count
    for _ in range(attempts):
        base = random.randrange(20000, high)  # noqa: S311 - spreads parallel runs, not a secret
        if _handed_out.intersection(range(base, base + count)):
            continue
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)).bind(
                        ("127.0.0.1", port)
                    )
            except OSError:
                continue
        _handed_out.update(range(base, base + count))
        return base
    raise RuntimeError(f"no {count} consecutive free loopback ports below {high + count} in {attempts} tries")


def stop_group(proc: Popen, *, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> None:
    """Ask the leader to stop with `sig`, SIGKILL the whole group after `timeout`, leave nothing behind.

    Only the leader gets the polite signal: PostgreSQL's helper processes must be shut down by the
    postmaster, not signalled directly.
    """
    pgid = proc.pid  # start_new_session=True makes the leader's pid the group id
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(pgid)
            proc.wait()
    _kill_group(pgid)  # stragglers the leader left behind, if any


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    proc: Popen | None = None,
    log_file: Path | None = None,
    interval: float = 0.1,
) -> None:
    """Poll `check` until it returns True; fail fast if `proc` dies, with the log tail in the message."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}{log_tail(log_file)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s{log_tail(log_file)}")
        time.sleep(interval)


def log_tail(log_file: Path | None, lines: int = 25) -> str:
    """Last lines of a log, formatted for an exception message ("" when there is no log)."""
    if log_file is None or not log_file.exists():
        return ""
    text = log_file.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log_file} ---\n" + "\n".join(text)
