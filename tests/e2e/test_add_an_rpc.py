"""docs/add-an-rpc.md, followed to the letter on a copy of the repository.

The page's snippets (each after a ``<!-- snippet: NAME -->`` marker) are applied to a copy, the stubs
are regenerated there, the page's test runs there, then that copy's users backend and gateway are
started and the new REST route is called. The page and this test cannot drift apart.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2

from harness.backends import health_status

# The harness, in one place: process handles, polling, health, infrastructure and test tokens.
from harness.infra import InfraEnv
from harness.processes import Proc, wait_until
from harness.tokens import TokenIssuer
from infra.local import free_port
from infra.paths import REPO_ROOT
from stubs.users.v1 import users_pb2, users_pb2_grpc

pytestmark = pytest.mark.infra

ROOT = REPO_ROOT
PAGE = ROOT / "docs" / "add-an-rpc.md"
_SNIPPET = re.compile(r"<!-- snippet: ([\w-]+) -->\n```\w*\n(.*?)```", re.DOTALL)
_COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".cache", ".run", "node_modules", "__pycache__", ".*_cache", "results", "go"
)


def snippets() -> dict[str, str]:
    return {name: body for name, body in _SNIPPET.findall(PAGE.read_text())}


def test_the_page_has_every_step() -> None:
    assert set(snippets()) == {
        "proto-rpc",
        "proto-messages",
        "regenerate",
        "servicer-method",
        "test",
        "run-test",
        "call",
        "response",
    }


def _insert_into_service(proto: str, service: str, rpc: str) -> str:
    opening = f"service {service} {{\n"
    assert opening in proto, f"{service} not found"
    return proto.replace(opening, opening + rpc + "\n", 1)


def _append_to_class(source: str, class_name: str, method: str) -> str:
    """``method`` as the last statement of the top-level class ``class_name``."""
    (node,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == class_name]
    lines = source.splitlines(keepends=True)
    end = node.end_lineno or len(lines)
    return "".join([*lines[:end], "\n", method, *lines[end:]])


def _make_target_command(target: str) -> list[str]:
    """The first recipe line of a Makefile target, e.g. ``@$(VENV_PY) scripts/gen_protos.py``."""
    recipe = (ROOT / "Makefile").read_text().split(f"\n{target}:", 1)[1].splitlines()[1]
    return shlex.split(recipe.strip().lstrip("@"))


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository with the page applied and its stubs regenerated."""
    page = snippets()
    copy = tmp_path_factory.mktemp("add-an-rpc") / "portico"
    shutil.copytree(ROOT, copy, ignore=_COPY_IGNORE, symlinks=True)

    proto = copy / "proto" / "users" / "v1" / "users.proto"
    text = _insert_into_service(proto.read_text(), "UserService", page["proto-rpc"])
    proto.write_text(text + "\n" + page["proto-messages"])
    service = copy / "backends" / "users" / "service.py"
    service.write_text(_append_to_class(service.read_text(), "UserService", page["servicer-method"]))
    run_test = shlex.split(page["run-test"])
    (copy / run_test[3]).write_text(page["test"])

    # The contract checks of `make test` (buf lint with comment rules, buf format) accept the page's proto.
    buf = ROOT / "node_modules" / ".bin" / "buf"
    subprocess.run([buf, "lint"], cwd=copy, check=True, timeout=120)
    subprocess.run([buf, "format", "--diff", "--exit-code"], cwd=copy, check=True, timeout=120)

    # `make protos` is scripts/gen_protos.py (and the Go example client, which this copy leaves out).
    assert page["regenerate"].strip() == "make protos"
    command = _make_target_command("protos")
    assert command[0] == "$(VENV_PY)", command
    subprocess.run([sys.executable, *command[1:]], cwd=copy, check=True, timeout=120)
    assert "CountUsersResponse" in (copy / "stubs" / "users" / "v1" / "users_pb2.pyi").read_text()
    return copy


def _spawn(copy: Path, name: str, module: str, env: Mapping[str, str], log_dir: Path) -> Proc:
    """``python -m <module>`` run from the copy, so the copy's packages are the ones imported."""
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(copy), **env}
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=copy,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proc(name, popen, log_path)


def test_the_page_test_passes(copy: Path, infra: InfraEnv) -> None:
    """Step 4: the page's pytest command, run in the copy against this run's services."""
    command = shlex.split(snippets()["run-test"])
    assert command[:3] == [".venv/bin/python", "-m", "pytest"], command
    env = {**os.environ, **infra.env(), "PYTHONPATH": str(copy)}
    result = subprocess.run(
        # Its own --basetemp: without one, pytest resets /tmp/pytest-of-<user> to mode 0700, which locks
        # this run's PostgreSQL (another user, its data under that directory) out of its data directory.
        [
            sys.executable,
            "-m",
            "pytest",
            *command[3:],
            "-p",
            "no:cacheprovider",
            f"--basetemp={copy / '.tmp'}",
        ],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "1 passed" in result.stdout


@pytest.fixture(scope="module")
def running(
    copy: Path, infra: InfraEnv, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The copy's users backend and gateway: (users target, gateway URL). The other backends are left
    out; reflection cannot reach them, so the gateway keeps the table it loaded from the descriptor set."""
    log_dir = tmp_path_factory.mktemp("add-an-rpc-logs")
    users_port, gateway_port = free_port(), free_port()
    env = {
        **infra.env(),
        "PORTICO_DATABASE_URL": f"sqlite+aiosqlite:///{log_dir / 'users.db'}",
        "PORTICO_RUN_DIR": str(log_dir / "run"),
        "PORTICO_JWKS_TARGET": issuer.target,
        "PORTICO_USERS_PORT": str(users_port),
        "PORTICO_USERS_METRICS_PORT": str(free_port()),
        "PORTICO_USERS_TARGET": f"127.0.0.1:{users_port}",
        "PORTICO_GATEWAY_PORT": str(gateway_port),
        # The gateway fetches the token keys from its auth upstream: here the test issuer's GetJwks.
        "PORTICO_AUTH_TARGET": issuer.target,
        **{f"PORTICO_{name}_TARGET": f"127.0.0.1:{free_port()}" for name in ("POSTS", "BROKER")},
    }
    procs = [_spawn(copy, "users", "backends.users", env, log_dir)]
    try:
        target = env["PORTICO_USERS_TARGET"]
        wait_until(
            lambda: health_status(target) == health_pb2.HealthCheckResponse.SERVING, 90, "users SERVING"
        )
        procs.append(_spawn(copy, "gateway", "gateway", env, log_dir))
        url = f"http://127.0.0.1:{gateway_port}"
        wait_until(lambda: _answers(f"{url}/health"), 60, "gateway /health")
        yield target, url
    finally:
        for proc in reversed(procs):
            proc.terminate()
            print(f"----- {proc.name} log -----\n{proc.log()[-3000:]}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_new_route_answers_as_the_page_says(running: tuple[str, str], issuer: TokenIssuer) -> None:
    page = snippets()
    users_target, gateway_url = running
    tenant = "count-demo"
    # The tenant's admin (created with the service token the auth backend holds) and one more user.
    with grpc.insecure_channel(users_target) as channel:
        stub = users_pb2_grpc.UserServiceStub(channel)
        service = (("authorization", f"Bearer {issuer.token('service:auth', tenant, ('service',))}"),)
        admin = stub.CreateUser(
            users_pb2.CreateUserRequest(
                tenant_id=tenant, username="admin", email="admin@example.com", roles=["admin", "user"]
            ),
            metadata=service,
            timeout=10,
        ).user
        token = issuer.token(admin.id, tenant, ("admin", "user"), email=admin.email)
        stub.CreateUser(
            users_pb2.CreateUserRequest(tenant_id=tenant, username="cleo", email="cleo@example.com"),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )

    path = re.search(r"127\.0\.0\.1:8080(/\S+)", page["call"])
    assert path is not None, page["call"]
    answer = httpx.get(gateway_url + path[1], headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == json.loads(page["response"])
    assert answer.headers["content-type"].startswith("application/json")

    unauthenticated = httpx.get(gateway_url + path[1], timeout=10)
    assert unauthenticated.status_code == 401

    document = httpx.get(f"{gateway_url}/openapi.json", timeout=10).json()
    assert "get" in document["paths"][path[1]]
