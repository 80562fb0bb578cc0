"""Redis keys made of request data stay small: every such part of a key goes through :func:`key_part`.

A client chooses its username, tenant or forwarded address; kept as they are, a 256 KiB username would be
a 256 KiB key. A part stays readable for an operator while it is short and made only of
``[A-Za-z0-9_.@+-]`` (names, ids, IPv4 addresses); anything else — longer than :data:`READABLE_MAX`, or
with a ``:``, a brace, a space, a ``#`` or a non-ASCII letter — becomes ``#`` and the first 128 bits of
its BLAKE2b digest in hex. ``#`` is never kept, so a digest cannot equal a readable part; ``:`` and the
braces are never kept either, so parts joined by ``:`` cannot run into each other and a Redis Cluster hash
tag (``{…}``) around a part stays one tag.
"""

from __future__ import annotations

import functools
import hashlib
import re

__all__ = ["READABLE_MAX", "key_part", "tenant_tag"]

READABLE_MAX = 64  # characters; a digest part is 33
_READABLE = re.compile(rf"[A-Za-z0-9_.@+\-]{{0,{READABLE_MAX}}}")


def key_part(value: str) -> str:
    """``value`` as it is when short and plain, else ``#`` + 32 hex digits of its digest."""
    if _READABLE.fullmatch(value):
        return value
    # surrogatepass: a lone surrogate (possible in a decoded request) must digest, not raise.
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"#{digest}"


@functools.lru_cache(maxsize=1024)  # a few tenants, on every request's keys; bounded whatever is sent
def tenant_tag(tenant_id: str) -> str:
    """``{<tenant>}``: the Redis Cluster hash tag of the keys one tenant's request reads together (a
    token's revocation marks, its user's rate limits). Only the first ``{…}`` of a key is its tag."""
    return f"{{{key_part(tenant_id)}}}"
