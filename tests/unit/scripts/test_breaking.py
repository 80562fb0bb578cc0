"""scripts/breaking.sh against a released contract: a removed field fails it, an added one does not."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUF = ROOT / "node_modules" / ".bin" / "buf"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"BUF": str(BUF), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def released(tmp_path: Path) -> Path:
    """A copy of the contract, committed, tagged 9.9.9 and released with the script."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "breaking.sh", tmp_path / "scripts")
    shutil.copy(ROOT / "buf.yaml", tmp_path)
    shutil.copytree(ROOT / "proto", tmp_path / "proto", ignore=shutil.ignore_patterns("*.tar.gz"))
    git = ("git", "-c", "user.name=t", "-c", "user.email=t@example.com")
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-qm", "contract"), ("tag", "9.9.9")):
        assert run(tmp_path, *git, *args).returncode == 0
    release = run(tmp_path, "scripts/breaking.sh", "--release", "9.9.9")
    assert release.returncode == 0, release.stderr
    assert (tmp_path / "proto" / "released" / "9.9.9.tar.gz").is_file()
    return tmp_path


def edit_users_proto(root: Path, old: str, new: str) -> None:
    path = root / "proto" / "users" / "v1" / "users.proto"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_unchanged_contract_passes(released: Path) -> None:
    check = run(released, "scripts/breaking.sh")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "keep every client of 9.9.9 working" in check.stdout


def test_a_removed_field_fails_and_is_named(released: Path) -> None:
    path = released / "proto" / "users" / "v1" / "users.proto"
    field = re.search(r"^  string (last_name) = (\d+)[^;]*;\n", path.read_text(), re.MULTILINE)
    assert field is not None
    edit_users_proto(released, field.group(0), "")
    check = run(released, "scripts/breaking.sh")
    assert check.returncode != 0
    assert '"last_name"' in check.stdout, check.stdout
    assert "deleted" in check.stdout


def test_an_added_field_passes(released: Path) -> None:
    edit_users_proto(
        released, "message GetMeRequest {}", "message GetMeRequest {\n  // Unused.\n  string hint = 1;\n}"
    )
    check = run(released, "scripts/breaking.sh")
    assert check.returncode == 0, check.stdout + check.stderr
