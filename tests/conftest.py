"""Session fixtures: the real infrastructure and the running mesh, started once and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness.infra import InfraEnv, start_infra
from harness.mesh import Mesh, start_mesh
from harness.posts import PostsBackend, posts_backend_fixture
from harness.tokens import TokenIssuer
from harness.users import UsersBackend, users_backend_fixture
from infra.paths import REPO_ROOT

ROOT = REPO_ROOT


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfraEnv]:
    with ExitStack() as stack:
        yield start_infra(stack, tmp_path_factory.mktemp("infra"))


@pytest.fixture(scope="session")
def issuer() -> Iterator[TokenIssuer]:
    """Signs test access tokens; its key is served by a real GetJwks gRPC endpoint."""
    running = TokenIssuer().start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def mesh(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The whole mesh; tokens come from (and are verified against) its real auth backend."""
    running = start_mesh(infra.env(), tmp_path_factory.mktemp("mesh-logs"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def grpcurl() -> Path:
    path = ROOT / ".cache" / "bin" / "grpcurl"
    assert path.exists(), "grpcurl is installed by `python -m infra install` (make test does it)"
    return path


@pytest.fixture(scope="session")
def users_backend(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UsersBackend]:
    """A users backend on SQLite (the default store) against the session's Kafka and Redis."""
    yield from users_backend_fixture(infra, issuer, tmp_path_factory.mktemp("users"))


@pytest.fixture(scope="session")
def posts_backend(
    infra: InfraEnv, users_backend: UsersBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostsBackend]:
    """A posts backend on SQLite with a local image directory, checking authors with ``users_backend``."""
    yield from posts_backend_fixture(infra, users_backend, tmp_path_factory.mktemp("posts"))
