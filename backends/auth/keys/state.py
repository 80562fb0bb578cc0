"""The state file: the list of keys, in creation order, with when each signs and when it may go.

``keys.json`` holds no secret. Its order matters: the last key created that may sign is the signer
(see ``schedule``), which stays right even when two hosts' clocks disagree about ``created_at``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backends.auth.keys.errors import KeyStoreError
from backends.auth.keys.pem import ALGORITHM

STATE_FILE = "keys.json"
VERSION = 1
# An RFC 7638 SHA-256 thumbprint: 43 base64url characters. Checked because it becomes a file name.
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class KeyRecord:
    """One key's public facts; ``retire_after`` is None while no newer key supersedes it."""

    kid: str
    alg: str
    created_at: datetime
    signs_from: datetime
    retire_after: datetime | None


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is refused rather than guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise KeyStoreError(f"state file: {what} is not a timestamp")
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise KeyStoreError(f"state file: {what} is not an RFC 3339 timestamp with an offset") from None


def _record(item: Any) -> KeyRecord:
    if not isinstance(item, dict):
        raise KeyStoreError("state file: a key entry is not an object")
    kid = item.get("kid")
    if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
        raise KeyStoreError("state file: a key has no valid kid")
    if item.get("alg") != ALGORITHM:
        raise KeyStoreError(f"state file: key {kid} has unsupported alg {item.get('alg')!r}")
    retire_after = item.get("retire_after")
    return KeyRecord(
        kid=kid,
        alg=ALGORITHM,
        created_at=_parse_time(item.get("created_at"), f"created_at of {kid}"),
        signs_from=_parse_time(item.get("signs_from"), f"signs_from of {kid}"),
        retire_after=None if retire_after is None else _parse_time(retire_after, f"retire_after of {kid}"),
    )


def parse_state(data: bytes) -> tuple[KeyRecord, ...]:
    try:
        document = json.loads(data)
    except ValueError:
        raise KeyStoreError("state file is not valid JSON") from None
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise KeyStoreError(f"state file is not a version {VERSION} key list")
    items = document.get("keys")
    if not isinstance(items, list) or not items:
        raise KeyStoreError("state file lists no keys")
    records = tuple(_record(item) for item in items)
    if len({r.kid for r in records}) != len(records):
        raise KeyStoreError("state file lists a kid twice")
    return records


def dump_state(records: tuple[KeyRecord, ...]) -> bytes:
    document = {
        "version": VERSION,
        "keys": [
            {
                "kid": r.kid,
                "alg": r.alg,
                "created_at": format_time(r.created_at),
                "signs_from": format_time(r.signs_from),
                "retire_after": None if r.retire_after is None else format_time(r.retire_after),
            }
            for r in records
        ],
    }
    return (json.dumps(document, indent=2) + "\n").encode()
