"""Validation of uploaded post images: PNG, JPEG, GIF or WebP, decided by content, fully decodable, bounded.

Pure and synchronous (the service runs it in a worker thread). Order of checks, cheapest and safest first:
the byte size, the type from the magic bytes (never the name or the declared type), a walk of the file's
own structure in plain Python (which finds truncation, data appended after the image's end - polyglots
such as GIF+JavaScript or PNG+ZIP - and the declared dimensions and frame count), the pixel budget, and
only then Pillow, restricted to the one sniffed format, decoding every frame. Any failure on the way is an
``ImageRejected`` with a short user-facing message; nothing else escapes, whatever the input.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Literal

from meshkit.config.defaults import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from meshkit.media import sniff_image

Reason = Literal["PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"]

# Decoding an animation costs (canvas pixels x frames); a few MB of well-compressed frames can otherwise
# keep a worker busy for minutes. Ten full-size frames' worth is plenty for real animations.
FRAME_BUDGET_FACTOR = 10

_NOT_AN_IMAGE = "The image is not a PNG, JPEG, GIF or WebP file"
_DAMAGED = "The image is damaged or incomplete"
_TRAILING = "The image has data after its end"

_PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


@dataclass(frozen=True)
class CheckedImage:
    content_type: str  # "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    width: int
    height: int


class ImageRejected(Exception):
    """The upload is not an acceptable image; ``reason`` is the status detail, ``message`` is for the user."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: Reason = reason
        self.message = message


@dataclass(frozen=True)
class _Layout:
    """What the structure walk learnt: the largest canvas a decoder may allocate, and the frame count."""

    width: int
    height: int
    frames: int


class _Damaged(Exception):
    pass


class _Trailing(Exception):
    pass


def check_image(
    data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> CheckedImage:
    """Accept ``data`` as one of the four image types or raise ``ImageRejected``."""
    if not data:
        raise ImageRejected("UNSUPPORTED_MEDIA_TYPE", "The image is empty")
    if len(data) > max_bytes:
        raise ImageRejected("PAYLOAD_TOO_LARGE", f"The image is larger than {max_bytes} bytes")
    content_type = sniff_image(data)
    if content_type is None:
        raise ImageRejected("UNSUPPORTED_MEDIA_TYPE", _NOT_AN_IMAGE)
    # Pillow (about 5 MiB) is imported by the first image checked, not by every posts backend at start.
    from PIL import Image

    # Pillow warns (and later errors) on its own, higher, limit; staying under it keeps its
    # DecompressionBombWarning from ever firing, without touching the process-wide warning filters.
    if Image.MAX_IMAGE_PIXELS is not None:
        max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)

    try:
        layout = _WALKS[content_type](data)
    except _Trailing:
        raise ImageRejected("UNSUPPORTED_MEDIA_TYPE", _TRAILING) from None
    except (_Damaged, IndexError, struct.error):
        raise ImageRejected("UNSUPPORTED_MEDIA_TYPE", _DAMAGED) from None
    _check_pixels(layout.width, layout.height, max_pixels)
    if layout.width * layout.height * layout.frames > max_pixels * FRAME_BUDGET_FACTOR:
        raise ImageRejected("PAYLOAD_TOO_LARGE", "The animation has too many frames for its size")

    width, height = _decode(data, _PIL_FORMATS[content_type], max_pixels)
    return CheckedImage(content_type=content_type, width=width, height=height)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageRejected("PAYLOAD_TOO_LARGE", f"The image has more than {max_pixels} pixels")


def _decode(data: bytes, pil_format: str, max_pixels: int) -> tuple[int, int]:
    """Decode every frame with Pillow; returns the size Pillow reports."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as image:
            if image.format != pil_format:
                raise _Damaged  # e.g. a multi-picture JPEG (MPO); not expected past the walk
            width, height = image.size
            # Belt and braces: Pillow's own reading of the header must agree with the walk's budget.
            _check_pixels(width, height, max_pixels)
            for frame in ImageSequence.Iterator(image):
                frame.load()
                _check_pixels(frame.size[0], frame.size[1], max_pixels)
            return width, height
    except ImageRejected:
        raise
    except Image.DecompressionBombError:
        raise ImageRejected("PAYLOAD_TOO_LARGE", f"The image has more than {max_pixels} pixels") from None
    except Exception:  # hostile input makes Pillow raise a zoo of types; all of them mean "bad image"
        raise ImageRejected("UNSUPPORTED_MEDIA_TYPE", _DAMAGED) from None


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise _Damaged


def _walk_png(data: bytes) -> _Layout:
    """Chunks from the signature to IEND, which must end exactly at the end of the data."""
    pos, width, height, frames, animation_controls = 8, 0, 0, 0, 0
    first = True
    while True:
        _need(data, pos + 8)
        length, kind = struct.unpack_from(">I4s", data, pos)
        if length > 0x7FFFFFFF:
            raise _Damaged
        end = pos + 12 + length
        _need(data, end)
        if first != (kind == b"IHDR"):
            raise _Damaged  # IHDR must come first, and only once
        first = False
        if kind == b"IHDR":
            if length != 13:
                raise _Damaged
            width, height = struct.unpack_from(">II", data, pos + 8)
        elif kind == b"acTL":
            animation_controls += 1
            # Pillow only warns about a bad animation control and falls back; refuse it outright instead.
            if (
                animation_controls > 1
                or length < 8
                or not 0 < struct.unpack_from(">I", data, pos + 8)[0] <= 0x80000000
            ):
                raise _Damaged
        elif kind == b"fcTL":
            frames += 1
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise _Trailing
    return _Layout(width, height, max(frames, 1))


def _walk_gif(data: bytes) -> _Layout:
    """Header, blocks and sub-blocks up to the 0x3B trailer, which must be the last byte."""
    _need(data, 13)
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while True:
        _need(data, pos + 1)
        block = data[pos]
        if block == 0x3B:
            pos += 1
            break
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor
            _need(data, pos + 10)
            left, top, frame_width, frame_height, frame_flags = struct.unpack_from("<HHHHB", data, pos + 1)
            # Pillow grows the canvas to hold a frame that sticks out of the logical screen.
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            pos += 10 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size
            frames += 1
        else:
            raise _Damaged
    if frames == 0:
        raise _Damaged
    if pos != len(data):
        raise _Trailing
    return _Layout(width, height, frames)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while True:
        _need(data, pos + 1)
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG and DAC share the range


def _walk_jpeg(data: bytes) -> _Layout:
    """Marker segments and entropy-coded scans up to EOI (FF D9), which must end the data."""
    pos, width, height = 2, 0, 0
    while True:
        _need(data, pos + 1)
        if data[pos] != 0xFF:
            raise _Damaged
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes may precede any marker
            pos += 1
        _need(data, pos + 1)
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            continue
        if marker in (0x00, 0xD8):
            raise _Damaged
        _need(data, pos + 2)
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise _Damaged
        _need(data, pos + length)
        if marker in _JPEG_SOF:
            _need(data, pos + 7)
            height, width = struct.unpack_from(">HH", data, pos + 3)
        pos += length
        if marker == 0xDA:
            pos = _skip_scan(data, pos)
    if width == 0 or height == 0:
        raise _Damaged
    if pos != len(data):
        raise _Trailing
    return _Layout(width, height, 1)


def _skip_scan(data: bytes, pos: int) -> int:
    """Entropy-coded data: FF 00 is a stuffed byte, FF D0-D7 a restart; any other FF xx ends the scan."""
    while True:
        found = data.find(b"\xff", pos)
        if found < 0 or found + 1 >= len(data):
            raise _Damaged
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos = found + 2
        elif following == 0xFF:
            pos = found + 1
        else:
            return found


def _walk_webp(data: bytes) -> _Layout:
    """The RIFF size must cover the data exactly; chunks must tile it; the first chunk gives the canvas."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size < len(data) - 8:
        raise _Trailing
    if riff_size > len(data) - 8:
        raise _Damaged
    pos, frames, width, height = 12, 0, 0, 0
    first = True
    while pos < len(data):
        _need(data, pos + 8)
        kind, size = struct.unpack_from("<4sI", data, pos)
        payload = pos + 8
        _need(data, payload + size + (size & 1))
        if first:
            width, height = _webp_canvas(data, kind, payload, size)
            first = False
        if kind == b"ANMF":
            frames += 1
        pos = payload + size + (size & 1)
    if first or width == 0 or height == 0:
        raise _Damaged
    return _Layout(width, height, max(frames, 1))


def _webp_canvas(data: bytes, kind: bytes, payload: int, size: int) -> tuple[int, int]:
    if kind == b"VP8X" and size >= 10:
        canvas = data[payload + 4 : payload + 10]
        return 1 + int.from_bytes(canvas[:3], "little"), 1 + int.from_bytes(canvas[3:], "little")
    if kind == b"VP8 " and size >= 10 and data[payload + 3 : payload + 6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, payload + 6)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and size >= 5 and data[payload] == 0x2F:
        (bits,) = struct.unpack_from("<I", data, payload + 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise _Damaged


_WALKS = {"image/png": _walk_png, "image/jpeg": _walk_jpeg, "image/gif": _walk_gif, "image/webp": _walk_webp}
