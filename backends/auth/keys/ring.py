"""``KeyRing``: the auth backend's signing keys as loaded from the keys directory.

Replicas and the rotation CLI share the directory. A ring is a read-only view of it; ``reload_if_changed``
(one ``stat``) picks up a rotation made elsewhere. Only ``load_or_create`` (first key) and
``rotation.rotate`` write, under the directory lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backends.auth.keys import files, pem, schedule, store
from backends.auth.keys.errors import KeyStoreError
from backends.auth.keys.state import KeyRecord, as_utc
from stubs.auth.v1 import auth_pb2

log = logging.getLogger(__name__)

# A rotation prunes key files after rewriting the state; a reader caught in between sees a missing file
# and reads the state again. More attempts than this means something else is wrong.
_LOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring: its public facts and its private half."""

    record: KeyRecord
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)  # the kid and x identify it
    x: str  # public key, RFC 8037 form

    @property
    def kid(self) -> str:
        return self.record.kid

    @property
    def algorithm(self) -> str:
        return self.record.alg

    def jwk(self) -> auth_pb2.Jwk:
        return auth_pb2.Jwk(kty="OKP", crv="Ed25519", x=self.x, kid=self.kid, alg=self.algorithm, use="sig")


@dataclass(frozen=True)
class _Snapshot:
    stamp: store.Stamp
    keys: tuple[SigningKey, ...]  # creation order, like the state file


def _load(directory: Path, passphrase: bytes | None, known: dict[str, SigningKey]) -> _Snapshot:
    for _ in range(_LOAD_ATTEMPTS):
        records, stamp = store.read_state(directory)
        try:
            keys = tuple(_key(directory, record, passphrase, known) for record in records)
        except FileNotFoundError:
            if store.current_stamp(directory) != stamp:
                continue  # a rotation pruned a key while we read: read its new state
            break
        return _Snapshot(stamp, keys)
    raise KeyStoreError(f"a key listed in {store.state_path(directory)} has no key file")


def _key(
    directory: Path, record: KeyRecord, passphrase: bytes | None, known: dict[str, SigningKey]
) -> SigningKey:
    old = known.get(record.kid)
    if old is not None:  # same kid, same key (it is a hash of it): only the schedule may have changed
        return SigningKey(record, old.private_key, old.x)
    private_key = store.read_key(directory, record.kid, passphrase)
    return SigningKey(record, private_key, pem.public_x(private_key))


def create_first_key(directory: Path, passphrase: bytes | None, now: datetime) -> None:
    """Start a key set in an empty directory (the caller holds the lock): one key, signing at once."""
    if store.key_files(directory):
        raise KeyStoreError(
            f"{directory} holds key files but no {store.state_path(directory).name}: "
            "restore the state file or move the key files away"
        )
    key = pem.generate()
    kid = store.write_key(directory, key, passphrase)
    store.write_state(directory, (KeyRecord(kid, pem.ALGORITHM, now, now, None),))


class KeyRing:
    """Signing keys of one auth backend process. Thread-safe: a reload swaps one immutable snapshot."""

    def __init__(self, directory: Path, passphrase: bytes | None, snapshot: _Snapshot) -> None:
        self._directory = directory
        self._passphrase = passphrase
        self._snapshot = snapshot
        self._failed_stamp: store.Stamp | None = None  # the state version whose load failed, logged once

    @classmethod
    def load(cls, directory: Path, passphrase: bytes | None) -> KeyRing:
        """The key set already in ``directory``; KeyStoreError when there is none or it is unusable."""
        passphrase = passphrase or None
        return cls(directory, passphrase, _load(directory, passphrase, {}))

    @classmethod
    def load_or_create(cls, directory: Path, passphrase: bytes | None, now: datetime) -> KeyRing:
        """The key set in ``directory``, first creating it (0700) with one key when it is empty."""
        now = as_utc(now)
        passphrase = passphrase or None
        files.ensure_private_dir(directory)
        if not store.has_state(directory):
            with files.exclusive_lock(directory):
                if not store.has_state(directory):  # another replica may have won the race
                    create_first_key(directory, passphrase, now)
        return cls.load(directory, passphrase)

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Every key in the state file, in creation order (including retired ones not yet pruned)."""
        return self._snapshot.keys

    def signing_key(self, now: datetime) -> SigningKey:
        """The newest key whose ``signs_from`` has come."""
        keys = self._snapshot.keys
        return keys[schedule.signer_index([k.record for k in keys], now)]

    def published(self, now: datetime) -> list[SigningKey]:
        """Keys verifiers must know at ``now`` (next, signing, retiring), the signer first."""
        keys = self._snapshot.keys
        return [keys[i] for i in schedule.published_indices([k.record for k in keys], now)]

    def jwks(self, now: datetime) -> auth_pb2.GetJwksResponse:
        return auth_pb2.GetJwksResponse(keys=[key.jwk() for key in self.published(now)])

    def reload_if_changed(self) -> bool:
        """Reload when the state file changed (a rotation by the CLI or another replica); True if it did.

        Costs one ``stat`` when nothing changed. It never raises: a key set that cannot be loaded (say,
        files the CLI wrote as another user) is logged once, and the ring keeps signing with the keys it
        has rather than failing every login; the next call tries again.
        """
        stamp = store.current_stamp(self._directory)
        if stamp is None or stamp == self._snapshot.stamp:
            return False  # a vanished state file is an operator mistake: keep signing with what we have
        known = {key.kid: key for key in self._snapshot.keys}
        try:
            self._snapshot = _load(self._directory, self._passphrase, known)
        except (KeyStoreError, OSError) as exc:
            if stamp != self._failed_stamp:
                self._failed_stamp = stamp
                # The messages name files and kids only, never key material.
                log.error(
                    "cannot reload the signing keys; keeping the current ones", extra={"reason": str(exc)}
                )
            return False
        return True
