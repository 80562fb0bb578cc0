"""One Redis round trip per call: the revocation marks and the handler's first Redis read, in one ``MGET``.

A backend method may declare, from its request and the verified principal, the Redis keys its handler is
about to read (users' GetUser: the cache entry of the user asked for and its generation). The
authenticator (:mod:`meshkit.auth.interceptor`) then reads those keys in the same ``MGET`` as the token's
revocation marks, decides the revocation first — a revoked token is refused before the handler runs, as
without a prefetch — and hands the values to the handler, which takes them with :func:`take` instead of
asking Redis again. The library knows no key of any backend: the declaration is the backend's
(:class:`meshkit.rpc.runtime.Service`'s ``prefetch``).

Why this, and not the gateway vouching for its own revocation check (an HMAC assurance under the
forwarding secret that lets a backend skip its read):

- the guarantee stays where it was: every backend call is checked against Redis at the time it is
  handled, so "a logout answered before a request was sent refuses that request" holds for direct
  internal clients, for backends calling each other and for gateway calls alike, with no new credential,
  clock window or replay to reason about;
- it saves the round trip on every call path, not only behind the gateway (the users benchmark and posts
  calling users are direct);
- Redis being down is unchanged: the ``MGET`` fails, the revocation is decided as before (the loaded
  in-process set, else UNAVAILABLE — never a pass and never UNAUTHENTICATED because of the outage) and
  the handler finds nothing prefetched, so it reads (and bypasses) Redis itself.

A prefetched value is read at the start of the call, microseconds before the handler would have read it;
a handler that finds no value (Redis failed, the keys did not match, the method declared none) reads as
before, so a prefetch can save a round trip but never changes an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from typing import Any

from meshkit.auth.tokens import Principal

Value = bytes | str | None
# (request, principal) -> the Redis keys the handler reads first; () when it reads none for this request.
Prefetch = Callable[[Any, Principal], Sequence[str]]

_values: ContextVar[dict[str, Value] | None] = ContextVar("portico_prefetched", default=None)


def take(*keys: str) -> list[Value] | None:
    """The values of ``keys`` read ahead for this call, in order, each handed out once; None unless every
    one of them was read ahead (the caller then reads them itself)."""
    found = _values.get()
    if not found or not all(key in found for key in keys):
        return None
    return [found.pop(key) for key in keys]


Handover = Token[dict[str, Value] | None]


def hand_over(values: dict[str, Value] | None) -> Handover:
    """Make ``values`` the prefetched values of the call being handled (undone with :func:`reset`)."""
    return _values.set(values)


def reset(handover: Handover) -> None:
    _values.reset(handover)
