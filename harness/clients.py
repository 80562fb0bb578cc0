"""Build and run the three example clients of ``examples/clients`` (Python, Node, Go) side by side.

``build_clients`` makes each one runnable: nothing for Python (the project's venv), ``npm ci`` for Node
when its ``node_modules`` is missing, ``go build`` into a directory of the caller's for Go (the module
cache makes that work offline after the first download). ``run_clients`` runs all three at once with
the same target, token and user id and parses what each printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.paths import REPO_ROOT

ROOT = REPO_ROOT
CLIENTS_DIR = ROOT / "examples" / "clients"
NAMES = ("python", "node", "go")
BUILD_TIMEOUT = 600  # a first `go build` downloads modules; later ones take seconds
RUN_TIMEOUT = 60  # each client sets a 5 s deadline; this only guards against a hung process


class ClientBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Clients:
    """The command line that starts each client (options are appended)."""

    argv: Mapping[str, list[str]]


@dataclass(frozen=True)
class ClientResult:
    name: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise AssertionError(f"{self.name} printed no JSON: {self.stdout!r} / {self.stderr!r}") from exc

    @property
    def error_code(self) -> str:
        value = self.json
        return str(value["error"]["code"]) if isinstance(value, dict) and "error" in value else ""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ClientBuildError(f"`{name}` is needed to build the {name} example client")
    return found


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    if done.returncode != 0:
        raise ClientBuildError(f"{' '.join(argv)} failed in {cwd}:\n{done.stdout}{done.stderr}")


def build_clients(out_dir: Path) -> Clients:
    """Make the three clients runnable; the Go binary goes into ``out_dir``."""
    node_dir, go_dir = CLIENTS_DIR / "node", CLIENTS_DIR / "go"
    if not (node_dir / "node_modules" / "@grpc" / "grpc-js").is_dir():
        _run([_tool("npm"), "ci", "--no-audit", "--no-fund"], node_dir)
    go_binary = out_dir / "get_user"
    _run([_tool("go"), "build", "-o", str(go_binary), "./cmd/get_user"], go_dir)
    return Clients(
        {
            "python": [sys.executable, str(CLIENTS_DIR / "python" / "get_user.py")],
            "node": [_tool("node"), str(node_dir / "get_user.js")],
            "go": [str(go_binary)],
        }
    )


def run_client(
    clients: Clients, name: str, *, target: str, token: str, user_id: str, via_env: bool = False
) -> ClientResult:
    """Run one client; options as flags, or as PORTICO_* environment variables when ``via_env``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PORTICO_USERS_TARGET", "PORTICO_TOKEN")}
    env.pop("PORTICO_USER_ID", None)
    argv = list(clients.argv[name])
    if via_env:
        env.update(PORTICO_USERS_TARGET=target, PORTICO_TOKEN=token, PORTICO_USER_ID=user_id)
    else:
        argv += ["--target", target, "--token", token, "--user-id", user_id]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    return ClientResult(name, done.returncode, done.stdout, done.stderr)


def run_clients(
    clients: Clients, *, target: str, token: str, user_id: str, via_env: bool = False
) -> dict[str, ClientResult]:
    """The three clients' results for the same call, run concurrently."""
    with ThreadPoolExecutor(len(NAMES)) as pool:
        running = {
            name: pool.submit(
                run_client, clients, name, target=target, token=token, user_id=user_id, via_env=via_env
            )
            for name in NAMES
        }
        return {name: future.result() for name, future in running.items()}
