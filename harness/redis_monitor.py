"""What a process asks Redis, counted on the real server with ``MONITOR``: the commands that come from the
process's own connections while a block runs (its health probe's ``PING`` left out). The tests of "one
Redis round trip per call" read it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis import Redis

from harness.processes import wait_until


@contextmanager
def commands_of(redis_url: str, ports: Callable[[], set[int]]) -> Iterator[list[str]]:
    """The commands Redis receives from the local ``ports()`` while the block runs. ``ports`` is asked
    when the block ends, so a connection the process opened meanwhile is counted too."""
    seen: list[tuple[int, str]] = []
    start, stop = f"start-{uuid.uuid4().hex}", f"stop-{uuid.uuid4().hex}"
    ready = threading.Event()
    monitor_client, control = Redis.from_url(redis_url), Redis.from_url(redis_url)

    def watch() -> None:
        with monitor_client.monitor() as monitor:  # type: ignore[no-untyped-call]
            while True:
                entry = monitor.next_command()
                command = str(entry["command"])
                if start in command:
                    ready.set()
                elif stop in command:
                    return
                elif entry["client_port"]:
                    seen.append((int(entry["client_port"]), command))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_until(lambda: bool(control.echo(start)) and ready.is_set(), 10, "MONITOR started")
    found: list[str] = []
    try:
        yield found
    finally:
        control.echo(stop)
        watcher.join(10)
        own = ports()
        found.extend(c for port, c in seen if port in own and c.split()[0].upper() != "PING")
        control.close()
        monitor_client.close()
