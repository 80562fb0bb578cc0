"""The last key set a verifier fetched, kept in a file so a restarted process verifies tokens while auth
is unreachable.

Only the public members of each JWK are written (a private member in a key set would be auth's bug, and is
never copied to disk here), atomically (a temporary file renamed over the old one), so a crash mid-write
leaves the previous set. A missing, unreadable or unwritable file is logged and otherwise ignored: the
process then simply starts with no keys, as it did before this file existed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from meshkit.config.stores import run_dir

log = logging.getLogger(__name__)

# RFC 7517 / 8037 members of an OKP or EC public key, plus Portico's kid, alg and use.
PUBLIC_MEMBERS = ("kty", "crv", "x", "y", "kid", "alg", "use")


def public_only(jwk: dict[str, str]) -> dict[str, str]:
    return {name: jwk[name] for name in PUBLIC_MEMBERS if isinstance(jwk.get(name), str)}


class KeySetFile:
    """One process's kept key set: ``{"keys": [JWK, ...]}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: list[dict[str, str]] | None = None

    @classmethod
    def beside_run_dir(cls, process: str) -> KeySetFile:
        """``<run dir>/jwks/<process>.json``: one file per process name, so two never share one."""
        return cls(run_dir() / "jwks" / f"{process}.json")

    def load(self) -> list[dict[str, str]]:
        try:
            document = json.loads(self.path.read_text())
            keys = [public_only(jwk) for jwk in document["keys"] if isinstance(jwk, dict)]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the kept key set", extra={"path": str(self.path), "error": repr(exc)})
            return []
        self._saved = keys
        return keys

    def save(self, keys: list[dict[str, str]]) -> None:
        """Replace the kept set (a no-op when it is the one already kept)."""
        keys = [public_only(jwk) for jwk in keys]
        if keys == self._saved:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(handle, "w") as out:
                    json.dump({"keys": keys}, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # A read-only file system costs the restart guarantee, not the process.
            log.warning("cannot keep the key set", extra={"path": str(self.path), "error": repr(exc)})
            return
        self._saved = keys
