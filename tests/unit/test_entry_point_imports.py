"""Each process imports only what it uses: idle memory is mostly the packages a process loaded at start
(``python -m bench.footprint --modules`` lists them), so the heavy ones a process does not need are kept
out of its imports. Each case imports modules in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infra.paths import REPO_ROOT

# What each backend's wiring (everything its process imports at start) must not load, and why.
NOT_AT_START = {
    # No database (its spec names no migrations), no outbox and no consumer: SQLAlchemy, Alembic and
    # FastStream (with the uvicorn it imports) stay out; its own aiokafka clients talk to Kafka.
    "backends.broker.wiring": {"sqlalchemy", "alembic", "faststream", "uvicorn"},
    # boto3 only with an s3:// image store, Pillow only with the first image checked.
    "backends.posts.wiring": {"boto3", "botocore", "PIL", "alembic"},
    "backends.users.wiring": {"boto3", "PIL", "alembic"},
    "backends.auth.wiring": {"boto3", "PIL", "alembic"},
}

BACKENDS = ("users", "auth", "posts", "broker")
ENTRY_POINTS = ["gateway.__main__", *(f"backends.{name}.__main__" for name in BACKENDS)]
# A supervisor (``PORTICO_<PROCESS>_PROCESSES`` > 1) decides from the settings alone: the servers, the
# clients and the app are loaded by its children only.
SERVING = {"grpc", "uvicorn", "starlette", "sqlalchemy", "faststream", "aiokafka", "redis", "opentelemetry"}


def top_level_imports(*modules: str) -> set[str]:
    script = f"import sys, {', '.join(modules)}; print(' '.join({{m.split('.')[0] for m in sys.modules}}))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("module", sorted(NOT_AT_START))
def test_a_backend_leaves_out_what_its_process_does_not_use(module: str) -> None:
    # The wiring and the kit's server: what ``python -m backends.<name>`` imports before serving.
    assert top_level_imports(module, "meshkit.rpc.server") & NOT_AT_START[module] == set()


def test_an_entry_point_imports_only_the_settings_before_it_decides_to_supervise() -> None:
    # Imported, not run: ``if __name__ == "__main__"`` is where the serving modules are imported.
    assert top_level_imports(*ENTRY_POINTS) & SERVING == set()
