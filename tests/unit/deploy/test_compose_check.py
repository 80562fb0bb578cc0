"""scripts/compose_check.sh (`make compose-check`), checked offline: every image the stack it starts
needs — the gateway and its dependencies in compose.yaml, the Dockerfile's stages — has a stand-in in
deploy/standins, so a new dependency fails here in seconds, not in CI after the test suite."""

from __future__ import annotations

import re
from typing import Any, cast

import yaml

from infra.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "compose_check.sh"
STANDINS = REPO_ROOT / "deploy" / "standins"


def started_services() -> dict[str, dict[str, Any]]:
    """What `docker-compose up gateway` starts: the gateway and its depends_on, transitively."""
    services = cast(
        dict[str, dict[str, Any]], yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())["services"]
    )
    started: dict[str, dict[str, Any]] = {}
    todo = ["gateway"]
    while todo:
        name = todo.pop()
        if name not in started:
            started[name] = services[name]
            todo.extend(services[name].get("depends_on", {}))
    return started


def test_every_pulled_image_of_the_started_stack_has_a_stand_in() -> None:
    script = SCRIPT.read_text()
    pulled = {name for name, service in started_services().items() if "build" not in service}
    assert set(re.findall(r"\$\(compose_image (\w+)\)", script)) == pulled, (
        "add a stand-in to compose_check.sh"
    )
    assert pulled == {"kafka", "redis", "postgres"}, pulled


def test_every_base_image_of_the_dockerfile_has_a_stand_in() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.MULTILINE))
    bases = set(re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)) - stages
    copied = set(re.findall(r"COPY --from=(\S+)", dockerfile)) - stages
    repositories = {image.rsplit(":", 1)[0] for image in bases | copied}
    assert repositories == {"node", "python", "ghcr.io/astral-sh/uv"}, "add a stand-in to compose_check.sh"


def test_every_stand_in_is_built() -> None:
    """Each directory under deploy/standins is a build context the script builds under an upstream tag."""
    script = SCRIPT.read_text()
    built = set(re.findall(r'^build "\$\w+" (\w+)$', script, re.MULTILINE))
    assert built == {d.name for d in STANDINS.iterdir() if (d / "Dockerfile").is_file()}
