"""``X-Request-ID``: a sane one from the client is kept, otherwise one is made; every response echoes it
(set by :mod:`gateway.request_edge`)."""

from __future__ import annotations

import os
import re

from starlette.types import Scope

from gateway.state import scope_state

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
# Request ids end up in logs and metadata: accept only short, printable, unambiguous values.
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(scope: Scope) -> str:
    """The request id chosen for this request (set by the middleware)."""
    return scope_state(scope).get("request_id", "")


def new_request_id() -> str:
    """A random UUID (version 4) as 32 hex digits: ``uuid.uuid4().hex`` without the UUID object."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def choose_request_id(scope: Scope) -> str:
    """The first ``X-Request-ID`` sent when it is sane, else a new one; kept in the request's state."""
    incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == _HEADER_BYTES), "")
    request_id = incoming if _VALID.match(incoming) else new_request_id()
    scope_state(scope)["request_id"] = request_id
    return request_id
