"""The keys directory's layout: ``keys.json`` plus one ``<kid>.pem`` per key, both written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backends.auth.keys import files, pem
from backends.auth.keys.errors import KeyStoreError
from backends.auth.keys.state import KID_PATTERN, STATE_FILE, KeyRecord, dump_state, parse_state


@dataclass(frozen=True)
class Stamp:
    """Identity of one version of the state file. Every write is a rename, so the inode changes even
    when two writes fall in the same mtime tick."""

    inode: int
    mtime_ns: int
    size: int


def state_path(directory: Path) -> Path:
    return directory / STATE_FILE


def key_path(directory: Path, kid: str) -> Path:
    if not KID_PATTERN.fullmatch(kid):  # never let a tampered state file name a path elsewhere
        raise KeyStoreError("invalid kid")
    return directory / f"{kid}.pem"


def has_state(directory: Path) -> bool:
    return state_path(directory).exists()


def key_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pem"))


def current_stamp(directory: Path) -> Stamp | None:
    try:
        st = state_path(directory).stat()
    except FileNotFoundError:
        return None
    return Stamp(st.st_ino, st.st_mtime_ns, st.st_size)


def no_key_set(directory: Path) -> KeyStoreError:
    return KeyStoreError(f"no key set in {directory} (the auth backend creates one at start-up)")


def read_state(directory: Path) -> tuple[tuple[KeyRecord, ...], Stamp]:
    try:
        data, st = files.read_file(state_path(directory))
    except FileNotFoundError:
        raise no_key_set(directory) from None
    return parse_state(data), Stamp(st.st_ino, st.st_mtime_ns, st.st_size)


def write_state(directory: Path, records: tuple[KeyRecord, ...]) -> None:
    files.atomic_write(state_path(directory), dump_state(records))


def read_key(directory: Path, kid: str, passphrase: bytes | None) -> Ed25519PrivateKey:
    """The private key ``kid``; FileNotFoundError when its file is gone (pruned under our feet)."""
    path = key_path(directory, kid)
    data, st = files.read_file(path)
    key = pem.decode(data, st.st_mode, passphrase, name=path.name)
    if pem.kid_of(key) != kid:
        raise KeyStoreError(f"key file {path.name} holds a different key than its kid")
    return key


def write_key(directory: Path, key: Ed25519PrivateKey, passphrase: bytes | None) -> str:
    kid = pem.kid_of(key)
    files.atomic_write(key_path(directory, kid), pem.encode(key, passphrase))
    return kid


def remove_key(directory: Path, kid: str) -> None:
    files.remove(key_path(directory, kid))
