"""The Go grpc-gateway peer of ``bench/peer``: built on demand into ``.cache/bench``, then started.

The binary's name carries a digest of everything it is built from (the peer's sources, go.mod/go.sum,
``proto/``, the Go version), so an edit rebuilds it and worktrees sharing ``.cache`` never run each
other's. A build generates the peer's code from ``proto/`` into a scratch copy (``generate.sh``), then
``go build``s it there: the work tree is not written to. The first build on a machine downloads the
pinned modules from the Go module proxy (go.sum checks them) and takes a minute or two; later ones hit
the Go build cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bench.ghz import BenchError
from infra import paths, procs
from infra.paths import REPO_ROOT

PEER_DIR = REPO_ROOT / "bench" / "peer"
CACHE_DIR = paths.CACHE_DIR / "bench"
BUILD_TIMEOUT = 900  # a first build downloads modules and compiles grpc, grpc-gateway and go-redis


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BenchError("`go` not found: the Go grpc-gateway peer needs the Go toolchain")
    return go


def _sources() -> Iterator[Path]:
    """The files the binary is built from, in a stable order (the generated gen/ left out)."""
    for root in (PEER_DIR, REPO_ROOT / "proto"):
        for path in sorted(root.rglob("*")):
            if path.is_file() and "gen" not in path.relative_to(root).parts[:1]:
                yield path


def source_digest(go_version: str) -> str:
    digest = hashlib.sha256(go_version.encode())
    for path in _sources():
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _run(argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(argv)}: still running after {BUILD_TIMEOUT}s") from exc
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def build(log: Callable[[str], None] = lambda _: None) -> Path:
    """The peer's binary, built now unless one of these sources is already in the cache."""
    go = _go()
    env = {**os.environ, "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"}
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout
    binary = CACHE_DIR / f"grpc-gateway-peer-{source_digest(version.strip())}"
    if binary.exists():
        return binary
    log(f"building the Go grpc-gateway peer into {binary}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portico-peer-") as tmp:
        work = Path(tmp, "peer")
        shutil.copytree(PEER_DIR, work, ignore=shutil.ignore_patterns("gen"))
        _run(["bash", str(PEER_DIR / "generate.sh"), str(work)], PEER_DIR, env)
        _run([go, "build", "-o", str(work / "peer"), "."], work, env)
        os.replace(work / "peer", binary)  # whole or not at all, even with a build running beside
    return binary


@contextmanager
def running(binary: Path, port: int, env: Mapping[str, str], log_file: Path) -> Iterator[procs.Popen]:
    """The peer listening on 127.0.0.1:``port`` with Portico's ``PORTICO_*`` settings from ``env``, in a
    session of its own (so its CPU is measured like the gateways'); stopped at the end."""
    popen = procs.spawn(
        [str(binary), "-listen", f"127.0.0.1:{port}"],
        log_file=log_file,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
    )
    try:
        yield popen
    finally:
        procs.stop_group(popen, timeout=10)
