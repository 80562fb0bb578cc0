"""Conditional GET for binary replies (RFC 9110 §13.1.2 ``If-None-Match``) and their safety headers."""

from __future__ import annotations

# Served bytes come from users: browsers must not guess another type (a polyglot image read as HTML),
# and a response opened directly runs no script.
BINARY_SAFETY = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def _opaque(tag: str) -> str:
    """The opaque part of an entity tag; If-None-Match compares weakly, so ``W/`` does not matter."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def not_modified(if_none_match: str, etag: str) -> bool:
    """Whether a GET with this ``If-None-Match`` header is answered 304 for the current ``etag``."""
    if not if_none_match.strip():
        return False
    if if_none_match.strip() == "*":
        return True
    current = _opaque(etag)
    return any(_opaque(candidate) == current for candidate in if_none_match.split(","))
