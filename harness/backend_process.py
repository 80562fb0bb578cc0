"""Start one backend process on free ports and wait for its health, for tests that need just a few."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from harness.mesh import health_status
from harness.processes import Proc, spawn, wait_until
from infra.local import free_port


@dataclass
class BackendProcess:
    target: str
    metrics_port: int
    proc: Proc


def start_backend_process(
    name: str, env: Mapping[str, str], log_dir: Path, *, serving: bool = True
) -> BackendProcess:
    """``python -m backends.<name>`` with ``env`` plus its ports; waits until it is SERVING (with
    ``serving=False``, until its health answers at all) and raises with its log if it exits."""
    port, metrics_port = free_port(), free_port()
    prefix = f"PORTICO_{name.upper()}"
    full_env = {**env, f"{prefix}_PORT": str(port), f"{prefix}_METRICS_PORT": str(metrics_port)}
    proc = spawn(f"{name}-{port}", ["-m", f"backends.{name}"], full_env, log_dir)
    target = f"127.0.0.1:{port}"
    wanted = {health_pb2.HealthCheckResponse.SERVING} if serving else set(range(4))
    try:
        wait_until(
            lambda: health_status(target) in wanted or proc.popen.poll() is not None,
            90,
            f"{name} backend health",
        )
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{name} backend exited:\n{proc.log()[-4000:]}")
    except BaseException:
        proc.terminate()
        print(proc.log()[-4000:])
        raise
    return BackendProcess(target, metrics_port, proc)


def metric_value(metrics_port: int, name: str, labels: Mapping[str, str] | None = None) -> float:
    """A sample of a process's ``/metrics`` whose labels include ``labels`` (0 when absent)."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and (labels or {}).items() <= sample.labels.items():
                return float(sample.value)
    return 0.0
