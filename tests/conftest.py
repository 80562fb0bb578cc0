"""Session fixtures: the real infrastructure and the running mesh, started once and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.infra import InfraEnv, start_infra
from tests.support.mesh import Mesh, start_mesh

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfraEnv]:
    with ExitStack() as stack:
        yield start_infra(stack, tmp_path_factory.mktemp("infra"))


@pytest.fixture(scope="session")
def mesh(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    running = start_mesh(infra.env(), tmp_path_factory.mktemp("mesh-logs"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def grpcurl() -> Path:
    path = ROOT / ".cache" / "bin" / "grpcurl"
    assert path.exists(), "grpcurl is installed by `python -m infra install` (make test does it)"
    return path
