"""The kept key set: public members only, written atomically, and never a reason for a process to fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshkit.auth.keyfile import KeySetFile

JWK = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k1"}


def test_a_saved_set_loads_back_with_public_members_only(tmp_path: Path) -> None:
    kept = KeySetFile(tmp_path / "jwks" / "gateway.json")
    kept.save([{**JWK, "alg": "EdDSA", "use": "sig", "d": "private-part"}])
    loaded = KeySetFile(kept.path).load()
    assert loaded == [{**JWK, "alg": "EdDSA", "use": "sig"}]
    assert "private-part" not in kept.path.read_text()
    assert [p.name for p in kept.path.parent.iterdir()] == ["gateway.json"]  # no temporary file left


def test_a_missing_or_corrupt_file_is_an_empty_set(tmp_path: Path) -> None:
    assert KeySetFile(tmp_path / "absent.json").load() == []
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"keys": [')
    assert KeySetFile(corrupt).load() == []
    corrupt.write_text(json.dumps({"no-keys": []}))
    assert KeySetFile(corrupt).load() == []


def test_an_unwritable_place_is_logged_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    KeySetFile(blocker / "jwks.json").save([JWK])  # its directory cannot be created


def test_it_lives_in_the_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_RUN_DIR", str(tmp_path))
    assert KeySetFile.beside_run_dir("users").path == tmp_path / "jwks" / "users.json"
