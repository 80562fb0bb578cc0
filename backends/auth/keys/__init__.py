"""The auth backend's token signing keys: Ed25519 PEM files plus a JSON schedule in one directory.

``KeyRing`` loads them (creating the first key in an empty directory) and answers which key signs and
which are published at a given moment; ``rotate`` adds the next key. See ``rotation`` for the timeline.
"""

from backends.auth.keys.errors import KeyStoreError
from backends.auth.keys.ring import KeyRing, SigningKey
from backends.auth.keys.rotation import (
    CLOCK_SKEW,
    DEFAULT_PUBLISH_AHEAD,
    JWKS_CACHE,
    default_keep_after,
    rotate,
)
from backends.auth.keys.state import KeyRecord

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_PUBLISH_AHEAD",
    "JWKS_CACHE",
    "KeyRecord",
    "KeyRing",
    "KeyStoreError",
    "SigningKey",
    "default_keep_after",
    "rotate",
]
