"""Portico's own processes (backends, gateway, test programs) as real subprocesses, on ``infra``'s helpers.

``infra.procs`` starts every process in a session of its own and stops the whole group; this module adds
what the tests need on top: the project's interpreter and root, a fresh log file per process name, and
polling with the argument order the tests use.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from infra import procs
from infra.bytecode import cached_bytecode_env
from infra.paths import CACHE_DIR, REPO_ROOT

ROOT = REPO_ROOT


@dataclass
class Proc:
    name: str
    popen: procs.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, wait, then SIGKILL the whole group; returns the exit code."""
        procs.stop_group(self.popen, timeout=timeout)
        return self.popen.wait(5)


def spawn(name: str, args: list[str], env: Mapping[str, str], log_dir: Path, cwd: Path = ROOT) -> Proc:
    """``python <args>`` from the project root (or ``cwd``, another checkout) with ``env`` on top of ours;
    output to ``<name>.log``."""
    log_path = log_dir / f"{name}.log"
    # infra appends to a log; a test reads its process's log from the start, so each start gets a new one.
    log_path.unlink(missing_ok=True)
    base = cached_bytecode_env(os.environ, CACHE_DIR / "pycache")  # not compiled again per start
    full_env = {**base, "PYTHONUNBUFFERED": "1", "PORTICO_LOG_LEVEL": "INFO", **env}
    popen = procs.spawn([sys.executable, *args], log_file=log_path, cwd=cwd, env=full_env)
    return Proc(name, popen, log_path)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``predicate`` until true; ``TimeoutError`` after ``timeout`` seconds."""
    procs.wait_until(predicate, timeout=timeout, what=what, interval=interval)


def json_lines(proc: Proc) -> list[dict[str, object]]:
    """The JSON objects a process printed so far (other lines skipped)."""
    found = []
    for line in proc.log().splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found
