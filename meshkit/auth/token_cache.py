"""Verified access tokens by their SHA-256, so a token seen again costs a dictionary lookup, not a signature.

One implementation for every verifier (the gateway and each backend's interceptor), used by
:class:`~meshkit.auth.tokens.TokenVerifier` when it is given one. A token's signature and claims do not
change, so its principal is kept until the token's ``exp`` (without the leeway: past it the token is
verified again, with the leeway). What can change is whether its signing key is still trusted: an entry
keeps the key id, and the verifier asks its key set for it on every hit, so a key auth removed stops its
cached tokens as it stops new ones. Revocation is never cached here: it is asked on every call.

Bounded: least recently used entries go first past ``size``. Keys are digests, so a caller cannot make
an entry bigger than its principal, and a hit needs the exact token (a collision is SHA-256's).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from meshkit.auth.tokens import Principal

DEFAULT_SIZE = 10_000


class Verified(NamedTuple):
    kid: str  # the signing key it was verified with, asked for again on every hit
    principal: Principal


class VerifiedTokenCache:
    """Bounded LRU of verified principals by token digest, each valid until its token expires."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, Verified] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Verified | None:
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.principal.expires_at <= time.time():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, token: str, kid: str, principal: Principal) -> None:
        self._entries[self._key(token)] = Verified(kid, principal)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def discard(self, token: str) -> None:
        self._entries.pop(self._key(token), None)
