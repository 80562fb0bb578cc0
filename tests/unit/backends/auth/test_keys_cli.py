"""``python -m backends.auth.keys_cli``, run as an operator would: a separate process, settings from the
environment, kids and times on the screen, never key material."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from backends.auth.keys import KeyRing, rotate
from infra.paths import REPO_ROOT

ROOT = REPO_ROOT
PASSPHRASE = "a long random passphrase for the tests"  # noqa: S105 (a test fixture)
MISTYPED = "mistyped"


def _cli(
    *args: str, keys_dir: Path, passphrase: str | None = PASSPHRASE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    clean["PORTICO_AUTH_KEYS_DIR"] = str(keys_dir)
    if passphrase is not None:
        clean["PORTICO_AUTH_KEYS_PASSPHRASE"] = passphrase
    return subprocess.run(
        [sys.executable, "-m", "backends.auth.keys_cli", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_no_key_material(directory: Path, result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert PASSPHRASE not in output
    assert "PRIVATE KEY" not in output
    ring = KeyRing.load(directory, PASSPHRASE.encode())
    for path in directory.glob("*.pem"):
        for line in path.read_text().splitlines():
            if line and not line.startswith("-----"):
                assert line not in output
    for key in ring.keys:
        raw = key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        assert raw.hex() not in output


def _state(directory: Path) -> list[dict[str, str | None]]:
    keys: list[dict[str, str | None]] = json.loads((directory / "keys.json").read_text())["keys"]
    return keys


def _time(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def test_rotate_then_list(tmp_path: Path) -> None:
    old = KeyRing.load_or_create(tmp_path, PASSPHRASE.encode(), datetime.now(UTC)).keys[0].kid
    started = datetime.now(UTC)

    rotated = _cli("rotate", keys_dir=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    new = _state(tmp_path)[1]["kid"]
    assert new is not None
    assert f"new key {new}" in rotated.stdout

    old_entry, new_entry = _state(tmp_path)
    signs_from = _time(new_entry["signs_from"])
    assert started + timedelta(seconds=360) <= signs_from <= datetime.now(UTC) + timedelta(seconds=360)
    assert _time(old_entry["retire_after"]) == signs_from + timedelta(seconds=600 + 60)  # TTL + skew
    assert new_entry["retire_after"] is None

    listed = _cli("list", keys_dir=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["KID", "STATE", "CREATED", "SIGNS_FROM", "RETIRE_AFTER"]
    assert lines[1].split()[:2] == [old, "signing"]
    assert lines[2].split()[:2] == [new, "next"]
    assert lines[2].split()[-1] == "-"
    for result in (rotated, listed):
        _assert_no_key_material(tmp_path, result)


def test_list_shows_next_signing_and_retiring(tmp_path: Path) -> None:
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    first = KeyRing.load_or_create(tmp_path, PASSPHRASE.encode(), hour_ago).keys[0].kid
    second = rotate(
        tmp_path,
        PASSPHRASE.encode(),
        hour_ago,
        publish_ahead=timedelta(seconds=360),
        keep_after=timedelta(hours=2),
    )
    assert _cli("rotate", keys_dir=tmp_path).returncode == 0
    third = _state(tmp_path)[2]["kid"]

    # Listing reads only the state file: it needs no passphrase.
    listed = _cli("list", keys_dir=tmp_path, passphrase=None)
    assert listed.returncode == 0, listed.stderr
    states = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()[1:]}
    assert states == {first: "retiring", second: "signing", third: "next"}
    _assert_no_key_material(tmp_path, listed)


def test_durations_and_ttl_come_from_options_and_environment(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, PASSPHRASE.encode(), datetime.now(UTC))
    result = _cli(
        "rotate", "--publish-ahead", "400", keys_dir=tmp_path, env={"PORTICO_AUTH_ACCESS_TOKEN_TTL": "900"}
    )
    assert result.returncode == 0, result.stderr
    old, new = _state(tmp_path)
    assert _time(old["retire_after"]) - _time(new["signs_from"]) == timedelta(seconds=900 + 60)
    assert _time(new["signs_from"]) - _time(new["created_at"]) == timedelta(seconds=400)

    result = _cli("rotate", "--keep-after", "1000", keys_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _time(_state(tmp_path)[1]["retire_after"]) - _time(_state(tmp_path)[2]["signs_from"]) == timedelta(
        seconds=1000
    )


def test_a_longer_jwks_cache_raises_the_publication_time(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, PASSPHRASE.encode(), datetime.now(UTC))
    env = {"PORTICO_JWKS_CACHE_SECONDS": "900"}
    refused = _cli("rotate", "--publish-ahead", "400", keys_dir=tmp_path, env=env)
    assert refused.returncode == 1
    assert "at least 900 s" in refused.stderr
    assert _cli("rotate", keys_dir=tmp_path, env=env).returncode == 0
    new = _state(tmp_path)[1]
    assert _time(new["signs_from"]) - _time(new["created_at"]) == timedelta(seconds=900 + 60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rotate", "--publish-ahead", "10"), "at least 300 s"),
        (("rotate", "--keep-after", "100"), "at least the access-token TTL"),
        (("rotate", "--publish-ahead", "soon"), "invalid float value"),
        (("rotate", "--publish-ahead", "inf"), "error:"),
        (("shred",), "invalid choice"),
    ],
)
def test_unsafe_or_malformed_requests_exit_1(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    KeyRing.load_or_create(tmp_path, PASSPHRASE.encode(), datetime.now(UTC))
    result = _cli(*args, keys_dir=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(_state(tmp_path)) == 1  # nothing written


def test_a_wrong_passphrase_is_refused_without_revealing_anything(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, PASSPHRASE.encode(), datetime.now(UTC))
    result = _cli("rotate", keys_dir=tmp_path, passphrase=MISTYPED)
    assert result.returncode == 1
    assert "wrong passphrase" in result.stderr
    assert "Traceback" not in result.stderr
    assert MISTYPED not in result.stdout + result.stderr
    _assert_no_key_material(tmp_path, result)
    assert len(_state(tmp_path)) == 1


def test_no_key_set_exits_1(tmp_path: Path) -> None:
    for command in ("list", "rotate"):
        result = _cli(command, keys_dir=tmp_path / "missing")
        assert result.returncode == 1
        assert "no key set" in result.stderr
    assert not (tmp_path / "missing").exists()  # a typo in --keys-dir creates nothing


def test_a_bad_setting_exits_1(tmp_path: Path) -> None:
    result = _cli("list", keys_dir=tmp_path, env={"PORTICO_AUTH_ACCESS_TOKEN_TTL": "ten minutes"})
    assert result.returncode == 1
    assert "PORTICO_AUTH_ACCESS_TOKEN_TTL" in result.stderr
    assert "ten minutes" not in result.stderr  # input values are not echoed: they could be secrets
