"""Servers started as another OS user (PostgreSQL as root): the right identity, and no fork handlers run."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from infra.procs import spawn

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing to another user needs root")

ROOT = Path(__file__).resolve().parents[3]
USER = "nobody"  # on every Debian system; any user other than root shows the switch


def test_a_server_spawned_as_a_user_is_that_user_with_no_extra_groups_and_is_the_popen_itself(
    tmp_path: Path,
) -> None:
    log = tmp_path / "id.log"
    proc = spawn(["sh", "-c", "echo $$; id -u; id -g; id -G"], log_file=log, user=USER)
    assert proc.wait(timeout=30) == 0
    pid, uid, gid, groups = log.read_text().split("\n")[:4]
    entry = pwd.getpwnam(USER)
    assert (int(uid), int(gid)) == (entry.pw_uid, entry.pw_gid)
    assert groups.split() == [str(entry.pw_gid)]
    # setpriv execs: the Popen's pid is the server's, so stop_group and SIGKILL in fault tests reach it.
    assert int(pid) == proc.pid


# Run in a fresh interpreter: a fork handler cannot be unregistered, and one left pointing at a freed
# callback would crash this process's next fork.
_COUNT_FORK_HANDLERS = """
import ctypes, subprocess, sys
from infra.procs import as_user
calls = []
handler = ctypes.CFUNCTYPE(None)(lambda: calls.append(1))
ctypes.CDLL(None).__register_atfork(handler, None, None, None)
subprocess.run(["true"], check=True, user=sys.argv[1])
print(len(calls))
subprocess.run(as_user(["true"], sys.argv[1]), check=True)
print(len(calls))
"""


def test_spawning_as_another_user_runs_no_fork_handlers() -> None:
    # gRPC's fork handlers once crashed a PostgreSQL child before exec (Popen's user= forces fork()).
    # Count the handlers a fork runs, with one registered the way gRPC registers its own.
    out = subprocess.run(
        [sys.executable, "-c", _COUNT_FORK_HANDLERS, USER],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.split()
    assert out == ["1", "1"]  # Popen's user= ran it (the probe counts); as_user's spawn did not
