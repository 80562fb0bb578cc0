"""A streaming ``multipart/form-data`` reader (RFC 7578) that enforces size limits while it reads.

Fed the body chunk by chunk, it keeps at most one part's bytes (each bounded by its own limit) plus a
delimiter's worth of look-ahead, so a client that sends 50 MiB for a 5 MiB field is refused after about
5 MiB have arrived, never after the whole body. python-multipart (Starlette's optional parser) is not
among Portico's dependencies; this is the small subset an upload route needs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field

_HEADERS_END = b"\r\n\r\n"
_MAX_HEADER_BYTES = 8 * 1024
# The default bound on parts: Portico's largest form has 3 (a post's title, content and image).
MAX_PARTS = 16
_PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class MultipartError(Exception):
    """The body is not well-formed multipart (a 400)."""


class PartTooLarge(Exception):
    """A part, or the form fields together, passed their limit (a 413)."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(f"{name!r} is larger than {limit} bytes")
        self.name = name
        self.limit = limit


@dataclass
class Part:
    name: str
    filename: str | None  # None for a text field; a file part has one (possibly empty)
    content_type: str  # the declared media type, lower case, without parameters
    data: bytearray = field(default_factory=bytearray)

    @property
    def is_file(self) -> bool:
        return self.filename is not None


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type; None for any other type."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/form-data":
        return None
    value = _params(";" + params).get("boundary", "")
    # RFC 2046: 1 to 70 characters; refusing more keeps the look-ahead small.
    return value.encode("latin-1") if 0 < len(value) <= 70 else None


def _params(header_tail: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, raw in _PARAM.findall(header_tail):
        value = raw.strip()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found[key.lower()] = value
    return found


def _parse_headers(block: bytes) -> Part:
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError("A part has a malformed header line")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    kind, _, tail = disposition.partition(";")
    params = _params(";" + tail)
    if kind.strip().lower() != "form-data" or "name" not in params:
        raise MultipartError("A part has no Content-Disposition: form-data with a name")
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    filename = params.get("filename")
    return Part(name=params["name"], filename=filename, content_type=media or "text/plain")


class FormReader:
    """Incremental parser. ``limit_for(part)`` gives each part's byte limit once its headers are read;
    ``text_limit`` bounds all text fields together (they are small; a file has its own limit), and
    ``max_parts`` their number (each costs a header block and a Part, however small it is)."""

    def __init__(
        self, boundary: bytes, limit_for: Callable[[Part], int], text_limit: int, max_parts: int = MAX_PARTS
    ) -> None:
        # A CRLF is prepended to the body so the first delimiter looks like every other one.
        self._delimiter = b"\r\n--" + boundary
        self._limit_for = limit_for
        self._text_left = text_limit
        self._text_limit = text_limit
        self._max_parts = max_parts
        self._buffer = bytearray(b"\r\n")
        self._state = "preamble"
        self._part: Part | None = None
        self._part_limit = 0
        self._preamble = 0
        self.parts: list[Part] = []

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, chunk: bytes) -> None:
        if self._state == "done":
            return  # the epilogue is ignored (RFC 2046)
        self._buffer += chunk
        while self._step():
            pass

    def close(self) -> list[Part]:
        if self._state != "done":
            raise MultipartError("The multipart body ended before its closing boundary")
        return self.parts

    def _step(self) -> bool:
        """Advance as far as the buffer allows; False when more bytes are needed."""
        if self._state in ("preamble", "body"):
            index = self._buffer.find(self._delimiter)
            if index < 0:
                # Everything but a possible delimiter prefix at the end is content (or preamble).
                keep = len(self._delimiter) - 1
                if len(self._buffer) > keep:
                    self._take(len(self._buffer) - keep)
                return False
            self._take(index)
            if self._state == "body":
                self._end_part()
            del self._buffer[: len(self._delimiter)]
            self._state = "after-delimiter"
            return True
        if self._state == "after-delimiter":
            if len(self._buffer) < 2:
                return False
            if self._buffer[:2] == b"--":
                self._state = "done"
                self._buffer.clear()
                return False
            end = self._buffer.find(b"\r\n")
            if end < 0:
                if len(self._buffer) > 64:
                    raise MultipartError("Malformed multipart boundary line")
                return False
            if self._buffer[:end].strip(b" \t"):  # only transport padding may follow a boundary
                raise MultipartError("Malformed multipart boundary line")
            del self._buffer[: end + 2]
            self._state = "headers"
            return True
        if self._state == "headers":
            end = self._buffer.find(_HEADERS_END)
            if end < 0:
                if len(self._buffer) > _MAX_HEADER_BYTES:
                    raise MultipartError("A part's headers are too long")
                return False
            part = _parse_headers(bytes(self._buffer[:end]))
            del self._buffer[: end + len(_HEADERS_END)]
            if len(self.parts) >= self._max_parts:
                raise MultipartError(f"The form has more than {self._max_parts} parts")
            self._part, self._part_limit = part, self._limit_for(part)
            self._state = "body"
            return True
        return False

    def _take(self, count: int) -> None:
        if count <= 0:
            return
        if self._state == "body":
            part = self._part
            assert part is not None
            if len(part.data) + count > self._part_limit:
                raise PartTooLarge(part.name, self._part_limit)
            if not part.is_file:
                self._text_left -= count
                if self._text_left < 0:
                    raise PartTooLarge("form fields", self._text_limit)
            part.data += self._buffer[:count]
        else:
            self._preamble += count
            if self._preamble > _MAX_HEADER_BYTES:
                raise MultipartError("The multipart preamble is too long")
        del self._buffer[:count]

    def _end_part(self) -> None:
        assert self._part is not None
        self.parts.append(self._part)
        self._part = None


async def read_form(
    chunks: AsyncIterable[bytes],
    boundary: bytes,
    limit_for: Callable[[Part], int],
    text_limit: int,
    max_parts: int = MAX_PARTS,
) -> list[Part]:
    """Every part of the body, in order; raises MultipartError or PartTooLarge as soon as it can."""
    reader = FormReader(boundary, limit_for, text_limit, max_parts)
    async for chunk in chunks:
        reader.feed(chunk)
        if reader.done:
            break
    return reader.close()
