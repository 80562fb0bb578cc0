"""Which key signs and which are published at a given moment: pure functions of the records.

The signer is the most recently *created* key whose ``signs_from`` has come. Ordering by creation, not
by ``signs_from``, keeps rotation safe: a key stops signing as soon as any later key starts, and
``rotate`` sets every older key's ``retire_after`` past that later key's ``signs_from``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from backends.auth.keys.errors import KeyStoreError
from backends.auth.keys.state import KeyRecord, as_utc

State = Literal["next", "signing", "retiring", "retired"]


def is_published(record: KeyRecord, now: datetime) -> bool:
    return record.retire_after is None or as_utc(now) < record.retire_after


def signer_index(records: Sequence[KeyRecord], now: datetime) -> int:
    """Position (in creation order) of the key that signs at ``now``."""
    now = as_utc(now)
    live = [i for i, r in enumerate(records) if is_published(r, now)]
    if not live:
        raise KeyStoreError("no published key: every key is past retire_after (run a rotation)")
    started = [i for i in live if records[i].signs_from <= now]
    if started:
        return started[-1]
    # Only when this host's clock is behind the one that created the keys (e.g. the very first key,
    # created "now" by another replica): sign with the earliest one rather than fail every login.
    return min(live, key=lambda i: (records[i].signs_from, i))


def published_indices(records: Sequence[KeyRecord], now: datetime) -> list[int]:
    """Positions of the keys still published at ``now``: the signer first, then the others, newest first."""
    first = signer_index(records, now)
    rest = [i for i in reversed(range(len(records))) if i != first and is_published(records[i], now)]
    return [first, *rest]


def states(records: Sequence[KeyRecord], now: datetime) -> list[State]:
    """The state of each record at ``now``, in the same order."""
    first = signer_index(records, now)
    result: list[State] = []
    for i, record in enumerate(records):
        if not is_published(record, now):
            result.append("retired")  # stays listed until the next rotation prunes it
        elif i == first:
            result.append("signing")
        elif i > first:
            result.append("next")
        else:
            result.append("retiring")
    return result
