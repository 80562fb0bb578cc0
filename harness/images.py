"""Small real images made with Pillow, for the posts tests."""

from __future__ import annotations

import io

from PIL import Image

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


def image_bytes(content_type: str = "image/png", size: tuple[int, int] = (16, 12), seed: int = 0) -> bytes:
    """A decodable image of ``content_type``; a different ``seed`` gives different bytes."""
    picture = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    picture.putpixel((0, 0), (seed % 256, 255 - seed % 256, 7))
    out = io.BytesIO()
    picture.save(out, format=FORMATS[content_type])
    return out.getvalue()


def large_png(min_bytes: int) -> bytes:
    """A valid PNG of at least ``min_bytes`` (stored uncompressed)."""
    side = int((min_bytes / 3) ** 0.5) + 8
    pixels = bytes((i * 7919 + (i >> 8) * 104729) % 251 for i in range(side * side * 3))
    picture = Image.frombytes("RGB", (side, side), pixels)
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=0)
    return out.getvalue()
