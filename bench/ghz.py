"""Run ghz (``.cache/bin/ghz``) against one unary RPC and read its JSON report.

Loopback targets only: a load test sends traffic to this machine and nowhere else.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GHZ = ROOT / ".cache" / "bin" / "ghz"
PROTO = "proto/users/v1/users.proto"
# users.proto imports google/api and buf/validate, both vendored under proto/third_party.
IMPORT_PATHS = "proto,proto/third_party/googleapis,proto/third_party/protovalidate"


class BenchError(RuntimeError):
    """A setup problem (no ghz, a non-loopback target, ghz failing): exit status 2."""


def host_of(target: str) -> str:
    """The host part of a gRPC target such as ``127.0.0.1:50051``, ``[::1]:50051`` or ``dns:///h:1``."""
    rest = target.split("///", 1)[1] if "///" in target else target
    if rest.startswith("["):
        return rest[1 : rest.index("]")]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def require_loopback(target: str) -> None:
    """Refuse any target that is not (or does not resolve only to) a loopback address."""
    host = host_of(target)
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise BenchError(f"cannot resolve {host!r}: {exc}") from exc
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise BenchError(f"{target} is not a loopback address ({', '.join(sorted(addresses))}): refused")


@dataclass(frozen=True)
class GhzResult:
    """The figures of one ghz run; latencies in milliseconds (of successful calls, ghz's default)."""

    count: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    status_codes: dict[str, int]
    error_messages: dict[str, int]
    end_reason: str
    report: dict[str, Any] = field(repr=False)

    @property
    def errors(self) -> int:
        return self.count - self.status_codes.get("OK", 0)

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 1.0

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> GhzResult:
        percentiles = {
            int(entry["percentage"]): int(entry["latency"]) / 1e6
            for entry in report.get("latencyDistribution") or []
        }
        return cls(
            count=int(report.get("count", 0)),
            rps=float(report.get("rps", 0.0)),
            p50_ms=percentiles.get(50),
            p99_ms=percentiles.get(99),
            status_codes={str(k): int(v) for k, v in (report.get("statusCodeDistribution") or {}).items()},
            error_messages={str(k): int(v) for k, v in (report.get("errorDistribution") or {}).items()},
            end_reason=str(report.get("endReason", "")),
            report=report,
        )

    def redacted_report(self) -> dict[str, Any]:
        """The ghz report without the request metadata (it holds the access token)."""
        options = {k: v for k, v in self.report.get("options", {}).items() if k != "metadata"}
        return {**self.report, "options": options}


def run_ghz(
    *,
    target: str,
    call: str,
    metadata: dict[str, str],
    data: dict[str, Any] | Sequence[dict[str, Any]],
    requests: int,
    concurrency: int,
    connections: int = 1,
    timeout: str = "5s",
    max_seconds: float = 300.0,
    ghz: Path = GHZ,
    proto: str = PROTO,
) -> GhzResult:
    """One bounded ghz run: ``requests`` calls, each with ``timeout``, ghz killed after ``max_seconds``.

    ``data`` as a list makes ghz send its items round-robin, one per call. ghz's own ``--max-duration``
    is not used: in v0.120.0 it turns ``--total`` off and runs for the whole duration instead.
    """
    require_loopback(target)
    if not ghz.exists():
        raise BenchError(f"{ghz} not found: `.venv/bin/python -m infra install` installs it")
    with tempfile.TemporaryDirectory(prefix="portico-ghz-") as tmp:
        data_file, metadata_file, report_file = (
            Path(tmp, "data.json"),
            Path(tmp, "md.json"),
            Path(tmp, "r.json"),
        )
        data_file.write_text(json.dumps(data))
        # The token goes through a private file, not the command line (other users can read argv).
        fd = os.open(metadata_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(metadata, handle)
        argv = [
            str(ghz),
            "--insecure",
            f"--proto={proto}",
            f"--import-paths={IMPORT_PATHS}",
            f"--call={call}",
            f"--data-file={data_file}",
            f"--metadata-file={metadata_file}",
            f"--total={requests}",
            f"--concurrency={concurrency}",
            f"--connections={connections}",
            f"--timeout={timeout}",
            "--disable-template-functions",
            "--disable-template-data",
            "--format=json",
            f"--output={report_file}",
            target,
        ]
        try:
            done = subprocess.run(
                argv, cwd=ROOT, capture_output=True, text=True, timeout=max_seconds, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(
                f"ghz still running after {max_seconds:g}s: stopped (see --max-seconds)"
            ) from exc
        if done.returncode != 0 or not report_file.exists():
            raise BenchError(f"ghz failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return GhzResult.from_report(json.loads(report_file.read_text()))
