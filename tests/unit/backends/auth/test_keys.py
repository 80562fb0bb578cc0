"""The signing keys on disk: creation, file modes, encryption at rest, refusals, reload across instances."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from backends.auth.keys import KeyRing, KeyStoreError, rotate, store
from meshkit.auth.tokens import jwk_thumbprint

T0 = datetime(2030, 1, 1, tzinfo=UTC)
PASSPHRASE = b"correct horse battery staple"
ROTATE = {"publish_ahead": timedelta(seconds=360), "keep_after": timedelta(seconds=660)}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _pem(directory: Path) -> Path:
    (path,) = directory.glob("*.pem")
    return path


def _secrets(ring: KeyRing, directory: Path) -> list[str]:
    """Strings that must never appear in a message: the PEM bodies and the raw private keys."""
    found: list[str] = [PASSPHRASE.decode()]
    for path in directory.glob("*.pem"):
        found += [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]
    for key in ring.keys:
        raw = key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        found.append(raw.hex())
    return found


def test_an_empty_directory_gets_one_key_signing_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "auth-keys"
    ring = KeyRing.load_or_create(directory, None, T0)

    (key,) = ring.keys
    assert ring.signing_key(T0) == key
    assert (key.record.created_at, key.record.signs_from, key.record.retire_after) == (T0, T0, None)
    assert key.kid == jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": key.x})
    assert _pem(directory).name == f"{key.kid}.pem"
    assert _pem(directory).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
    state = json.loads((directory / "keys.json").read_text())
    assert state["keys"] == [
        {
            "kid": key.kid,
            "alg": "EdDSA",
            "created_at": "2030-01-01T00:00:00Z",
            "signs_from": "2030-01-01T00:00:00Z",
            "retire_after": None,
        }
    ]


def test_directory_is_0700_and_files_are_0600(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    KeyRing.load_or_create(directory, None, T0)
    rotate(directory, None, T0, **ROTATE)
    assert _mode(directory) == 0o700
    for path in directory.iterdir():
        assert _mode(path) == 0o600, path.name
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind


def test_loading_again_gives_the_same_key(tmp_path: Path) -> None:
    first = KeyRing.load_or_create(tmp_path, None, T0)
    again = KeyRing.load_or_create(tmp_path, None, T0 + timedelta(days=1))
    assert [k.kid for k in again.keys] == [k.kid for k in first.keys]


def test_the_jwks_holds_ed25519_public_keys_only(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path, None, T0)
    (jwk,) = ring.jwks(T0).keys
    key = ring.signing_key(T0)
    assert (jwk.kty, jwk.crv, jwk.x, jwk.kid, jwk.alg, jwk.use) == (
        "OKP",
        "Ed25519",
        key.x,
        key.kid,
        "EdDSA",
        "sig",
    )
    assert not jwk.HasField("y")
    assert "private_key" not in repr(key)  # the dataclass repr leaves the private half out


def test_replicas_starting_together_share_one_first_key(tmp_path: Path) -> None:
    kids: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        kids.append(KeyRing.load_or_create(tmp_path, None, T0).signing_key(T0).kid)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 8
    assert len(set(kids)) == 1
    assert len(list(tmp_path.glob("*.pem"))) == 1


def test_encrypted_keys_need_the_passphrase(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path, PASSPHRASE, T0)
    assert _pem(tmp_path).read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert KeyRing.load(tmp_path, PASSPHRASE).signing_key(T0).kid == ring.signing_key(T0).kid

    with pytest.raises(KeyStoreError, match="encrypted but no passphrase") as missing:
        KeyRing.load(tmp_path, None)
    with pytest.raises(KeyStoreError, match="wrong passphrase") as wrong:
        KeyRing.load(tmp_path, b"not the passphrase")
    for error in (missing.value, wrong.value):
        message = str(error)
        assert all(secret not in message for secret in _secrets(ring, tmp_path))
        assert error.__cause__ is None  # cryptography's own exception is not chained in


def test_an_unencrypted_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path, None, T0)
    for mode in (0o644, 0o640, 0o604):
        _pem(tmp_path).chmod(mode)
        with pytest.raises(KeyStoreError, match="chmod 600") as refused:
            KeyRing.load(tmp_path, None)
        assert f"{mode:04o}" in str(refused.value)
        assert all(secret not in str(refused.value) for secret in _secrets(ring, tmp_path))
    _pem(tmp_path).chmod(0o600)
    assert KeyRing.load(tmp_path, None).keys == ring.keys


def test_an_encrypted_key_may_be_readable_by_others(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path, PASSPHRASE, T0)
    _pem(tmp_path).chmod(0o644)
    assert KeyRing.load(tmp_path, PASSPHRASE).signing_key(T0).kid == ring.signing_key(T0).kid


def test_rotation_refuses_a_mistyped_passphrase(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, PASSPHRASE, T0)
    # A key encrypted with the wrong passphrase would be unloadable by every running backend.
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        rotate(tmp_path, b"typo", T0, **ROTATE)
    with pytest.raises(KeyStoreError, match="no passphrase"):
        rotate(tmp_path, None, T0, **ROTATE)
    assert len(list(tmp_path.glob("*.pem"))) == 1


def test_a_rotation_by_another_instance_is_picked_up(tmp_path: Path) -> None:
    server = KeyRing.load_or_create(tmp_path, PASSPHRASE, T0)
    assert server.reload_if_changed() is False  # nothing changed: one stat, no reload

    # The CLI, in another process, has its own view of the directory.
    new_kid = rotate(tmp_path, PASSPHRASE, T0 + timedelta(hours=1), **ROTATE)

    assert new_kid not in [k.kid for k in server.published(T0 + timedelta(hours=1))]
    assert server.reload_if_changed() is True
    assert server.reload_if_changed() is False
    later = T0 + timedelta(hours=1, seconds=1)
    assert [k.kid for k in server.published(later)][1] == new_kid  # pre-published, not yet signing
    assert server.signing_key(T0 + timedelta(hours=2)).kid == new_kid


def test_a_second_quick_rotation_is_picked_up_too(tmp_path: Path) -> None:
    server = KeyRing.load_or_create(tmp_path, None, T0)
    rotate(tmp_path, None, T0, **ROTATE)
    server.reload_if_changed()
    # Same size, possibly the same mtime tick: the rename still gives the state file a new inode.
    last = rotate(tmp_path, None, T0, **ROTATE)
    assert server.reload_if_changed() is True
    assert server.keys[-1].kid == last


def test_a_reader_racing_a_prune_reads_the_new_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    KeyRing.load_or_create(tmp_path, None, T0)
    rotate(tmp_path, None, T0, **ROTATE)  # the first key retires at T0 + 1020 s
    prune_at = T0 + timedelta(hours=1)
    read_state = store.read_state
    calls = 0

    def racing_read_state(directory: Path) -> tuple[tuple[store.KeyRecord, ...], store.Stamp]:
        nonlocal calls
        calls += 1
        result = read_state(directory)
        if calls == 1:  # between this reader's state read and its key reads, a rotation prunes
            monkeypatch.setattr(store, "read_state", read_state)
            rotate(tmp_path, None, prune_at, **ROTATE)
            monkeypatch.setattr(store, "read_state", racing_read_state)
        return result

    monkeypatch.setattr(store, "read_state", racing_read_state)
    ring = KeyRing.load(tmp_path, None)
    assert calls == 2
    assert len(ring.keys) == 2  # the pruned key is gone, the two newer ones loaded


def test_a_ring_keeps_its_keys_when_a_reload_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = KeyRing.load_or_create(tmp_path, None, T0)
    kid = rotate(tmp_path, None, T0, **ROTATE)
    (tmp_path / f"{kid}.pem").chmod(0o644)

    # A running backend keeps signing with what it has (and says so once) rather than failing logins.
    assert server.reload_if_changed() is False
    assert server.reload_if_changed() is False
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "cannot reload the signing keys; keeping the current ones"
    ]
    assert "chmod 600" in caplog.records[0].__dict__["reason"]
    assert len(server.keys) == 1
    assert server.signing_key(T0) == server.keys[0]

    (tmp_path / f"{kid}.pem").chmod(0o600)
    assert server.reload_if_changed() is True
    assert server.keys[-1].kid == kid


def test_key_files_without_a_state_file_are_not_replaced(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, None, T0)
    (tmp_path / "keys.json").unlink()
    with pytest.raises(KeyStoreError, match=r"no keys\.json"):
        KeyRing.load_or_create(tmp_path, None, T0)


def test_a_key_file_must_hold_the_key_its_kid_names(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, None, T0)
    rotate(tmp_path, None, T0, **ROTATE)
    first, second = sorted(tmp_path.glob("*.pem"))
    content = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(content)
    with pytest.raises(KeyStoreError, match="different key than its kid"):
        KeyRing.load(tmp_path, None)


def test_a_state_file_cannot_point_outside_the_directory(tmp_path: Path) -> None:
    KeyRing.load_or_create(tmp_path, None, T0)
    state = json.loads((tmp_path / "keys.json").read_text())
    state["keys"][0]["kid"] = "../../etc/passwd"
    (tmp_path / "keys.json").write_text(json.dumps(state))
    with pytest.raises(KeyStoreError, match="no valid kid"):
        KeyRing.load(tmp_path, None)


def test_rotate_needs_an_existing_key_set(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="no key set"):
        rotate(tmp_path, None, T0, **ROTATE)


def test_naive_times_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        KeyRing.load_or_create(tmp_path, None, datetime(2030, 1, 1))
    ring = KeyRing.load_or_create(tmp_path, None, T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ring.signing_key(datetime(2030, 1, 1))
