"""Compressed JSON answers: br or gzip, as the client's ``Accept-Encoding`` prefers (RFC 9110 §12.5.3).

Only whole ``application/json`` bodies of at least ``compress_min_bytes`` are compressed (the API's
answers, errors and ``/openapi.json``); streams, images, HEAD, 204/304 and bodies that already carry a
``Content-Encoding`` never are. Such a JSON answer says ``Vary: Accept-Encoding`` whatever the request
asked, so a cache keeps the codings apart. The work happens in the send of the outermost layer
(:mod:`gateway.request_edge`): no layer of its own. br wins a tie of q-values (smaller, at a quality as
cheap as gzip's default level); each is ``q=1`` unless the header lowers it, ``*`` covers both, ``q=0``
refuses one.
"""

from __future__ import annotations

import gzip
import importlib
from types import ModuleType

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Scope


def _brotli() -> ModuleType | None:
    try:
        return importlib.import_module("brotli")
    except ImportError:  # a dependency (pyproject.toml); an environment without it still serves gzip
        return None


brotli = _brotli()

BR, GZIP = "br", "gzip"
# br first: on equal q-values it wins (it compresses JSON about a fifth smaller at this quality).
_OFFERED = (BR, GZIP) if brotli is not None else (GZIP,)
_BR_QUALITY = 4  # 11 (the default) costs ~20x the CPU for a few percent; 4 is about gzip -6's cost
_GZIP_LEVEL = 6


def _q(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 0.0  # an unreadable weight accepts nothing
    return 1.0


def choose_coding(accept_encoding: str) -> str | None:
    """The coding to answer with for this ``Accept-Encoding``, or None for the body as it is."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if coding == "x-gzip":  # RFC 9110 §8.4.1.3: the same coding
            coding = GZIP
        if coding and coding not in weights:
            weights[coding] = _q(params)
    best, best_q = None, 0.0
    for coding in _OFFERED:
        q = weights.get(coding, weights.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


def _accept_encoding(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return str(value.decode("latin-1"))
    return ""


class Compression:
    """The gateway's compression of JSON answers (one per app; it keeps the last body it compressed)."""

    __slots__ = ("_last", "_min_bytes")

    def __init__(self, min_bytes: int) -> None:
        self._min_bytes = min_bytes
        # /openapi.json sends the same bytes object until the route table changes: compressed once.
        self._last: dict[str, tuple[bytes, bytes]] = {}

    def coding_for(self, scope: Scope, start: Message, headers: MutableHeaders) -> str | None:
        """For a response about to start: the coding its body will be sent in (None: as it is). A JSON
        answer large enough to be compressed gets ``Vary: Accept-Encoding`` here, HEAD's too."""
        status = int(start["status"])
        if status < 200 or status in (204, 304) or "content-encoding" in headers:
            return None
        media = headers.get("content-type", "")
        if not (media == "application/json" or media.startswith("application/json;")):
            return None
        length = headers.get("content-length")
        if length is None or int(length) < self._min_bytes:
            return None
        headers.add_vary_header("Accept-Encoding")
        if scope["method"] == "HEAD":
            return None
        return choose_coding(_accept_encoding(scope))

    def encode(self, start: Message, body: Message, coding: str) -> Message:
        """The body message in ``coding``, ``start``'s headers updated to say so; a body sent in parts
        (never from a JSON response of Starlette's) is passed as it is."""
        if body.get("more_body", False):
            return body
        data = bytes(body.get("body", b""))
        last = self._last.get(coding)
        if last is not None and last[0] is data:
            encoded = last[1]
        else:
            encoded = _br(data) if coding == BR else _gzip(data)
            self._last[coding] = (data, encoded)
        headers = MutableHeaders(scope=start)
        headers["Content-Encoding"] = coding
        headers["Content-Length"] = str(len(encoded))
        return {"type": "http.response.body", "body": encoded}


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)  # mtime 0: the same bytes each time


def _br(data: bytes) -> bytes:
    assert brotli is not None  # br is offered only with it
    compressed: bytes = brotli.compress(data, quality=_BR_QUALITY)
    return compressed
