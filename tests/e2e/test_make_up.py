"""``make up`` brings the whole mesh to ready; SIGTERM to make stops everything and leaves no process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from harness.processes import ROOT, wait_until
from infra.local import free_port

pytestmark = pytest.mark.infra


def processes_with_marker(marker: str) -> list[str]:
    """Command lines of live processes whose environment carries ``marker`` (children inherit it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # exited meanwhile, or not ours to read
    return found


def test_make_up_then_sigterm_leaves_no_process(tmp_path: Path, grpcurl: Path) -> None:
    marker = f"PORTICO_E2E_MARK={uuid.uuid4().hex}"
    ports = {name: free_port() for name in ("users", "auth", "posts", "broker")}
    gateway_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        {
            "PORTICO_RUN_DIR": str(tmp_path / "run"),
            "PORTICO_KAFKA_PORT": str(free_port()),
            "PORTICO_KAFKA_CONTROLLER_PORT": str(free_port()),
            "PORTICO_REDIS_PORT": str(free_port()),
            "PORTICO_GATEWAY_PORT": str(gateway_port),
            "PORTICO_E2E_MARK": marker.split("=", 1)[1],
        }
    )
    for name, port in ports.items():
        env[f"PORTICO_{name.upper()}_PORT"] = str(port)
        env[f"PORTICO_{name.upper()}_METRICS_PORT"] = str(free_port())
        env[f"PORTICO_{name.upper()}_TARGET"] = f"127.0.0.1:{port}"
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        make = subprocess.Popen(["make", "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        wait_until(
            lambda: "Portico is ready in" in log_path.read_text(errors="replace"), 240, "make up ready"
        )
        print(f"make up ready after {time.monotonic() - started:.1f}s")
        assert httpx.get(f"http://127.0.0.1:{gateway_port}/ready", timeout=5).status_code == 200
        listed = subprocess.run(
            [str(grpcurl), "-plaintext", f"127.0.0.1:{ports['users']}", "list"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "users.v1.UserService" in listed.stdout
        assert "grpc.health.v1.Health" in listed.stdout
        assert len(processes_with_marker(marker)) >= 8  # kafka, redis, 4 backends, gateway, waiter

        make.send_signal(signal.SIGTERM)  # to make alone: it must pass the signal on
        assert make.wait(60) is not None
        wait_until(lambda: not processes_with_marker(marker), 20, "every process to exit")
    finally:
        if make.poll() is None:
            make.kill()
        for line in processes_with_marker(marker):
            print("left behind:", line)
        print(log_path.read_text(errors="replace")[-6000:])
    assert not processes_with_marker(marker)
