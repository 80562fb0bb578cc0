"""Key rotation: publish the next key ahead of use, keep the old one until its last token expires.

Timeline of ``rotate(now)`` with P = publish_ahead and K = keep_after::

    now            now + P                    now + P + K
     |  next key published, old one signs  |  next key signs, old one still published  |  old one gone

P must cover the verifiers' JWKS cache (300 s), so none meets a token signed by a key it has not seen;
K must cover the access-token TTL plus clock skew, so no valid token outlives its key.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from backends.auth.keys import files, pem, schedule, store
from backends.auth.keys.ring import KeyRing
from backends.auth.keys.state import KeyRecord, as_utc

log = logging.getLogger(__name__)

# How long verifiers cache the JWKS: the kit's JwksClient default and the gateway's
# `Cache-Control: max-age=300` on /.well-known/jwks.json.
JWKS_CACHE = timedelta(seconds=300)
# Clock differences between hosts, plus the verifiers' 30 s leeway on `exp`.
CLOCK_SKEW = timedelta(seconds=60)
DEFAULT_PUBLISH_AHEAD = JWKS_CACHE + CLOCK_SKEW


def default_keep_after(access_token_ttl: timedelta) -> timedelta:
    return access_token_ttl + CLOCK_SKEW


def rotate(
    directory: Path,
    passphrase: bytes | None,
    now: datetime,
    *,
    publish_ahead: timedelta,
    keep_after: timedelta,
) -> str:
    """Add the next signing key (signing from ``now + publish_ahead``) and schedule the retirement of
    every older key in use (``retire_after = next.signs_from + keep_after``); prune keys already past
    their ``retire_after``. Returns the new kid.
    """
    now = as_utc(now)
    if publish_ahead < timedelta(0) or keep_after < timedelta(0):
        raise ValueError("publish_ahead and keep_after cannot be negative")
    passphrase = passphrase or None
    if not store.has_state(directory):  # checked first so a mistyped directory is not created
        raise store.no_key_set(directory)
    with files.exclusive_lock(directory):
        # Loading every key first proves the passphrase is the one the running backends use: a new key
        # encrypted with a mistyped passphrase would be unloadable by all of them.
        records = [key.record for key in KeyRing.load(directory, passphrase).keys]
        kept = [r for r in records if schedule.is_published(r, now)]
        pruned = [r for r in records if not schedule.is_published(r, now)]
        key = pem.generate()
        signs_from = now + publish_ahead
        retire_after = signs_from + keep_after
        kept = [r if r.retire_after is not None else replace(r, retire_after=retire_after) for r in kept]
        kid = store.write_key(directory, key, passphrase)  # the file exists before the state names it
        store.write_state(directory, (*kept, KeyRecord(kid, pem.ALGORITHM, now, signs_from, None)))
        for record in pruned:
            store.remove_key(directory, record.kid)
    log.info("signing key rotated", extra={"kid": kid, "signs_from": signs_from.isoformat()})
    return kid
