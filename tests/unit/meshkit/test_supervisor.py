"""The serving-process supervisor with stand-in children: ports held by others, signals passed on, a
child that fails or is killed, a supervisor that dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.procs import free_port
from meshkit.supervisor import port_in_use

# A child that records its pid and index, then waits for SIGTERM and exits with the code it was given.
CHILD = """
import os, signal, sys, time
from pathlib import Path
index = os.environ["PORTICO_PROCESS_INDEX"]
codes = sys.argv[2].split(",")
if codes[int(index)] == "fail":
    # Fail only once the others are up, so the test knows every pid it must then see stopped.
    while len(os.listdir(sys.argv[1])) < len(codes) - 1:
        time.sleep(0.01)
    sys.exit(3)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(int(codes[int(index)])))
Path(sys.argv[1], f"{index}-{os.getpid()}").write_text("")
while True:
    time.sleep(0.05)
"""


def start_supervisor(tmp_path: Path, codes: str, ports: list[int]) -> subprocess.Popen[bytes]:
    """The supervisor of stand-in children (their pid files in ``tmp_path``, its stderr beside it)."""
    argv = [sys.executable, "-c", CHILD, str(tmp_path), codes]
    program = (
        "import sys; from meshkit.supervisor import supervise; "
        f"sys.exit(supervise({len(codes.split(','))}, '127.0.0.1', {ports!r}, 'test', {argv!r}))"
    )
    with (tmp_path.parent / f"{tmp_path.name}.err").open("wb") as err:
        return subprocess.Popen([sys.executable, "-c", program], stderr=err, start_new_session=True)


def children(tmp_path: Path, count: int) -> list[int]:
    """The children's pids once all ``count`` have started."""
    deadline = time.monotonic() + 30
    while len(list(tmp_path.iterdir())) < count:
        assert time.monotonic() < deadline, "children did not start"
        time.sleep(0.05)
    return [int(p.name.split("-")[1]) for p in sorted(tmp_path.iterdir())]


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"


def wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if alive(p)]}"
        time.sleep(0.05)


@pytest.fixture
def port() -> int:
    return free_port()


def test_a_free_port_is_free(port: int) -> None:
    assert not port_in_use("127.0.0.1", port)


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_another_program_listens_on_is_in_use(port: int, reuse_port: bool) -> None:
    # Even a listener that shares its port with SO_REUSEPORT (another supervisor's child) is found.
    with socket.socket() as other:
        if reuse_port:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        assert port_in_use("127.0.0.1", port)


def test_a_port_in_use_stops_the_start_before_any_child(tmp_path: Path, port: int) -> None:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        supervisor = start_supervisor(tmp_path, "0,0", [port])
        assert supervisor.wait(30) == 1
    err = (tmp_path.parent / f"{tmp_path.name}.err").read_text()
    assert f"127.0.0.1:{port} is already in use" in err
    assert list(tmp_path.iterdir()) == []


def test_sigterm_reaches_every_child_and_a_clean_stop_exits_0(tmp_path: Path, port: int) -> None:
    supervisor = start_supervisor(tmp_path, "0,0", [port])
    pids = children(tmp_path, 2)
    assert len(set(pids)) == 2
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(30) == 0
    wait_gone(pids)


def test_a_child_that_fails_its_stop_makes_the_exit_non_zero(tmp_path: Path, port: int) -> None:
    supervisor = start_supervisor(tmp_path, "0,5", [port])
    pids = children(tmp_path, 2)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(30) == 1
    wait_gone(pids)


def test_a_child_that_fails_to_start_stops_the_others_and_exits_1(tmp_path: Path, port: int) -> None:
    supervisor = start_supervisor(tmp_path, "0,fail", [port])
    assert supervisor.wait(30) == 1
    wait_gone(children(tmp_path, 1))


def test_a_killed_child_stops_the_others_and_exits_1(tmp_path: Path, port: int) -> None:
    supervisor = start_supervisor(tmp_path, "0,0", [port])
    first, second = children(tmp_path, 2)
    os.kill(second, signal.SIGKILL)
    assert supervisor.wait(30) == 1  # not restarted: the process manager above restarts the whole
    wait_gone([first, second])


def test_children_get_sigterm_when_the_supervisor_is_killed(tmp_path: Path, port: int) -> None:
    supervisor = start_supervisor(tmp_path, "0,0", [port])
    pids = children(tmp_path, 2)
    supervisor.kill()
    supervisor.wait(10)
    wait_gone(pids)
