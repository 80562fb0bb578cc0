"""The Dockerfile, read as data (no engine here to build it): multi-stage, the final stage runs as a
non-root numeric user, and it copies every first-party package the Procfile's Portico commands import
(followed through their imports), the files they read at start, and nothing the .dockerignore drops."""

from __future__ import annotations

import ast
import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath

from gateway.config import GatewaySettings
from harness.procfile import procfile_modules
from infra.paths import REPO_ROOT

ROOT = REPO_ROOT
WORKDIR = PurePosixPath("/app")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


@cache
def stages() -> tuple[Stage, ...]:
    """Instructions per stage, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], name))
        else:
            assert found, f"{keyword} before the first FROM"
            found[-1].instructions.append((keyword, rest.strip()))
    return tuple(found)


def copies(stage: Stage) -> list[tuple[list[str], str, str | None]]:
    """(sources, destination, --from) of each COPY in ``stage``."""
    result = []
    for keyword, rest in stage.instructions:
        if keyword != "COPY":
            continue
        words = rest.split()
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        origin = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        result.append((paths[:-1], paths[-1], origin))
    return result


def first_party(name: str) -> bool:
    return (ROOT / name / "__init__.py").is_file() or (ROOT / f"{name}.py").is_file()


def imported_packages(package: str) -> set[str]:
    """First-party top-level packages imported anywhere under ``package``."""
    found: set[str] = set()
    for source in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update(top for top in (n.split(".")[0] for n in names) if first_party(top))
    return found


def runtime_packages() -> set[str]:
    """The closure of first-party packages reachable from the Procfile's Portico modules."""
    todo = {module.split(".")[0] for module in list(procfile_modules().values())}
    seen: set[str] = set()
    while todo:
        package = todo.pop()
        seen.add(package)
        todo |= imported_packages(package) - seen
    return seen


def build_stage() -> Stage:
    """The stage whose /app the final stage copies."""
    final = stages()[-1]
    origins = {origin for _, destination, origin in copies(final) if destination == str(WORKDIR)}
    (origin,) = origins
    return next(stage for stage in stages() if stage.name == origin)


def in_app(stage: Stage, destination: str) -> PurePosixPath:
    workdir = next((PurePosixPath(r) for k, r in reversed(stage.instructions) if k == "WORKDIR"), WORKDIR)
    return workdir / destination


def copied_into_app(stage: Stage) -> dict[PurePosixPath, tuple[list[str], str | None]]:
    return {in_app(stage, destination): (sources, origin) for sources, destination, origin in copies(stage)}


def test_the_build_is_multi_stage() -> None:
    assert len(stages()) >= 2
    final = stages()[-1]
    assert final.base.startswith("python:"), final.base
    assert build_stage() is not final


def test_the_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = [rest for keyword, rest in final.instructions if keyword == "USER"]
    assert users, "no USER in the final stage: the processes would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), f"USER {users[-1]}: numeric, so Kubernetes' runAsNonRoot can verify it"
    assert int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    last_user = max(i for i, (keyword, _) in enumerate(final.instructions) if keyword == "USER")
    after = [keyword for keyword, _ in final.instructions[last_user:]]
    assert "RUN" not in after, "a RUN after USER runs unprivileged by accident or needs root"


def test_every_package_the_processes_import_is_copied() -> None:
    packages = runtime_packages()
    assert {"gateway", "meshkit", "backends", "observability", "stubs"} <= packages
    copied = copied_into_app(build_stage())
    for package in sorted(packages):
        assert WORKDIR / package in copied, f"{package} is imported at run time but not copied"
        sources, origin = copied[WORKDIR / package]
        assert origin is None, package
        assert sources == [package], package


def test_the_files_read_at_start_are_in_the_image() -> None:
    copied = copied_into_app(build_stage())
    # /docs serves swagger-ui-dist from the directory the gateway's settings name (relative to the code).
    assets = GatewaySettings.model_fields["docs_assets_dir"].get_default(call_default_factory=True)
    assets = assets.relative_to(ROOT)
    assert WORKDIR / assets.as_posix() in copied, f"{assets} (the /docs assets) is not copied"
    # The descriptor set and the migrations travel inside the packages copied whole.
    assert (ROOT / "stubs" / "portico.binpb").is_file()
    for backend in ("users", "auth"):
        assert (ROOT / "backends" / backend / "migrations").is_dir()
    assert WORKDIR / "deploy/healthcheck.py" in copied, "compose's health checks run deploy/healthcheck.py"


def test_the_python_environment_comes_from_the_lock_file() -> None:
    build = build_stage()
    runs = " ".join(rest for keyword, rest in build.instructions if keyword == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    sources = [source for sources, _, _ in copies(build) for source in sources]
    assert {"pyproject.toml", "uv.lock"} <= set(sources)
    env = " ".join(rest for keyword, rest in stages()[-1].instructions if keyword == "ENV")
    assert "PATH=/app/.venv/bin:$PATH" in env


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in dockerignore_patterns() for prefix in prefixes)


def test_the_build_context_keeps_what_is_copied_and_drops_local_state() -> None:
    for stage in stages():
        for sources, _, origin in copies(stage):
            if origin is None:
                for source in sources:
                    assert (ROOT / source).exists(), source
                    assert not ignored(source), f".dockerignore drops {source}, which the Dockerfile copies"
    for local in (".git", ".venv", ".run", ".cache", "node_modules", "tests"):
        assert ignored(local), f"{local} would be sent to the builder"


def test_the_installable_package_is_what_the_processes_import() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        wheel = tomllib.load(file)["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert set(wheel["packages"]) == runtime_packages()
