"""bench.users_get end to end with the real ghz, against the scripted UserService (small and fast).

The benchmark of the real backend is run by hand (docs/benchmarks.md); this checks the harness itself:
ghz's JSON report is read, the miss pool is sent one id per call, and more than 1 % errors fail.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from bench.ghz import GHZ, BenchError, host_of, require_loopback
from harness.servers.scripted_users import ScriptedUsers, scripted_users, serve
from infra.paths import REPO_ROOT
from stubs.users.v1 import users_pb2

ROOT = REPO_ROOT
TOKEN = "bench-token"  # noqa: S105 - not a secret: the scripted server's expected bearer value
POOL = 300

pytestmark = pytest.mark.infra


@pytest.fixture(autouse=True)
def _ghz_installed() -> None:
    assert GHZ.exists(), "ghz is installed by `python -m infra install` (make test does it)"


def user(user_id: str) -> users_pb2.User:
    return users_pb2.User(id=user_id, tenant_id="t", username=user_id, created_at=Timestamp(seconds=1))


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedUsers, str]]:
    users = {f"u{i}": user(f"u{i}") for i in range(POOL)}
    servicer = scripted_users({**users, "hot": user("hot")}, TOKEN)
    with serve(servicer, workers=8) as target:
        yield servicer, target


def bench(target: str, pool_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bench.users_get", "--target", target, "--token", TOKEN]
    argv += ["--user-id", "hot", "--pool-file", str(pool_file), "--requests", str(POOL), "--warmup", "20"]
    return subprocess.run([*argv, *extra], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_two_scenarios_are_measured_and_the_pool_is_sent_once_each(
    scripted: tuple[ScriptedUsers, str], tmp_path: Path
) -> None:
    servicer, target = scripted
    pool_file = tmp_path / "pool.txt"
    pool_file.write_text("".join(f"u{i}\n" for i in range(POOL)))

    done = bench(target, pool_file, "--concurrency", "5")

    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith("cache-")}
    assert set(rows) == {"cache-hit", "cache-miss"}
    for row in rows.values():
        assert row[1] == str(POOL)  # requests
        assert float(row[2]) > 0  # rps
        assert row[5] == "0"  # errors
    assert "hit/miss ratio: rps" in done.stdout
    pool_calls = [call.user_id for call in servicer.calls if call.user_id != "hot"]
    assert sorted(pool_calls) == sorted(f"u{i}" for i in range(POOL))  # each id exactly once
    assert all(call.metadata["authorization"] == f"Bearer {TOKEN}" for call in servicer.calls)


def test_more_than_one_percent_errors_fail(scripted: tuple[ScriptedUsers, str], tmp_path: Path) -> None:
    _, target = scripted
    pool_file = tmp_path / "pool.txt"
    bad = 6  # 2 % of the calls
    pool_file.write_text(
        "".join(f"u{i}\n" for i in range(POOL - bad)) + "".join(f"gone{i}\n" for i in range(bad))
    )

    done = bench(target, pool_file)

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "cache-miss errors: NotFound x6" in done.stdout
    assert "more than 1% errors in cache-miss" in done.stderr


def test_only_loopback_targets() -> None:
    assert host_of("dns:///localhost:50051") == "localhost"
    assert host_of("[::1]:50051") == "::1"
    require_loopback("127.0.0.1:50051")
    require_loopback("localhost:50051")
    with pytest.raises(BenchError, match="not a loopback"):
        require_loopback("192.0.2.1:50051")
