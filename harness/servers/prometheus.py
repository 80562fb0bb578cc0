"""A real Prometheus (Debian's `prometheus` package, installed by `make install`) scraping the test mesh
with the repository's scrape configuration, only the targets moved to the mesh's ports."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import yaml

from harness.mesh import Mesh
from harness.processes import wait_until
from infra.paths import REPO_ROOT
from infra.procs import free_port

ROOT = REPO_ROOT
CONFIG = ROOT / "observability" / "prometheus" / "prometheus.yml"
# Production scrapes every 15 s; the test cannot wait minutes for rates, so it scrapes every second.
SCRAPE_INTERVAL = "1s"


def mesh_config(mesh: Mesh) -> dict[str, Any]:
    """The repository's `portico` scrape job (same job name, same `service` labels) aimed at the mesh."""
    production = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    (job,) = (job for job in production["scrape_configs"] if job["job_name"] == "portico")
    ports = {**mesh.metrics_ports, "gateway": urlsplit(mesh.gateway_url).port}
    for static in job["static_configs"]:
        service = static["labels"]["service"]
        static["targets"] = [f"127.0.0.1:{ports.pop(service)}"]
    assert not ports, f"the scrape configuration has no target for {sorted(ports)}"
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
        "scrape_configs": [job],
    }


@dataclass
class Prometheus:
    url: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, **params: str | float) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=30)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query_range", query=expr, start=start, end=end, step=step)
        return cast(list[dict[str, Any]], data["result"])

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]], self.get("/api/v1/query_exemplars", query=expr, start=start, end=end)
        )

    def metric_names(self) -> set[str]:
        """Names with samples, and families announced by a scrape without any (a labelled counter
        before its first increment) — OpenMetrics names a counter family without `_total`."""
        names = set(self.get("/api/v1/label/__name__/values"))
        return names | set(self.get("/api/v1/metadata"))

    def targets_up(self) -> dict[str, str]:
        active = self.get("/api/v1/targets")["activeTargets"]
        return {target["labels"]["service"]: target["health"] for target in active}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_prometheus(config: dict[str, Any], directory: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's `prometheus` is installed by `make install` (python -m infra install)"
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",  # Grafana's latency panels show the trace exemplars
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", popen, log_path)
    try:
        wait_until(lambda: ready(server), 30, "prometheus /-/ready")
        yield server
    finally:
        popen.terminate()
        try:
            popen.wait(15)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)


def ready(server: Prometheus) -> bool:
    if server.popen.poll() is not None:
        raise AssertionError(f"prometheus exited: {server.log()[-2000:]}")
    try:
        return httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_scrapes(server: Prometheus, timeout: float = 20) -> float:
    """Every target up (a scrape made it); returns when."""
    wait_until(lambda: set(server.targets_up().values()) == {"up"}, timeout, "every target scraped")
    return time.time()
