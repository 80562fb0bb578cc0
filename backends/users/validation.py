"""What the users backend derives from request fields; their rules are in ``users.proto``."""

from __future__ import annotations

import re


def username_from_email(email: str) -> str:
    """A valid username derived from the address's local part (CreateUser does not require one)."""
    local = re.sub(r"[^A-Za-z0-9_.-]", "", email.partition("@")[0])[:32]
    return local if len(local) >= 3 else (local + "user")[:32]
