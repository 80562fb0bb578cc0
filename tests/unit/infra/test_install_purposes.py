"""`python -m infra install --for up|test`: `make up` installs what the mesh runs on, `make test` all."""

from __future__ import annotations

import pytest

from infra import cli, install

TEST_ONLY = {"chromium", "docker-compose", "promtool", "wrk", "ghz", "grpcurl", "kustomize", "postgresql"}


def labels(components: tuple[str, ...]) -> set[str]:
    return {step.label.split()[0] for component in components for step in install.steps(component)}


def test_up_installs_no_test_tool() -> None:
    assert labels(install.PURPOSES["up"]).isdisjoint(TEST_ONLY)
    assert {"java", "kafka", "redis-server", "npm"} <= labels(install.PURPOSES["up"])


def test_test_installs_everything_up_does_and_the_test_tools() -> None:
    assert labels(install.PURPOSES["test"]) >= labels(install.PURPOSES["up"]) | TEST_ONLY
    assert set(install.PURPOSES["test"]) == set(install.COMPONENTS)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], list(install.COMPONENTS)),  # no flag: everything, as `make test` and CI need
        (["--for", "up"], list(install.PURPOSES["up"])),
        (["--only", "redis"], ["redis"]),
    ],
)
def test_the_command_line_picks_the_components(
    argv: list[str], expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[list[str]] = []
    monkeypatch.setattr(install, "install", chosen.append)
    assert cli.main(["install", *argv]) == 0
    assert chosen == [expected]


def test_for_and_only_do_not_mix() -> None:
    with pytest.raises(SystemExit):
        cli.main(["install", "--for", "up", "--only", "redis"])
