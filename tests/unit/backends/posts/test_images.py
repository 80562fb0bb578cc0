"""Post image validation: real images accepted, truncations, polyglots, other types and bombs refused."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from backends.posts.images import FRAME_BUDGET_FACTOR, CheckedImage, ImageRejected, check_image
from meshkit.media import sniff_image as sniff


def _picture(size: tuple[int, int] = (64, 48), shade: int = 0) -> Image.Image:
    # Some structure, so lossy encoders keep real entropy-coded data (with FF bytes) to cut into.
    image = Image.new("RGB", size, (shade, 120, 200))
    for x in range(0, size[0], 3):
        for y in range(0, size[1], 5):
            image.putpixel((x, y), ((x * 7 + shade) % 256, (y * 11) % 256, (x * y) % 256))
    return image


def _encode(image: Image.Image, pil_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format, **options)
    return buffer.getvalue()


def _animation(pil_format: str, frames: int = 4, size: tuple[int, int] = (40, 30)) -> bytes:
    pictures = [_picture(size, shade=40 * index) for index in range(frames)]
    return _encode(pictures[0], pil_format, save_all=True, append_images=pictures[1:], duration=80, loop=0)


@cache
def samples() -> dict[str, tuple[str, bytes]]:
    """Real images made by Pillow: name -> (expected content type, bytes)."""
    return {
        "png": ("image/png", _encode(_picture(), "PNG")),
        "png-animated": ("image/png", _animation("PNG")),
        "jpeg": ("image/jpeg", _encode(_picture(), "JPEG", quality=85)),
        "jpeg-progressive": ("image/jpeg", _encode(_picture(), "JPEG", progressive=True)),
        "gif": ("image/gif", _encode(_picture().convert("P"), "GIF")),
        "gif-animated": ("image/gif", _animation("GIF")),
        "webp-lossy": ("image/webp", _encode(_picture(), "WEBP", quality=80)),
        "webp-lossless": ("image/webp", _encode(_picture(), "WEBP", lossless=True)),
        "webp-animated": ("image/webp", _animation("WEBP")),
    }


def _rejected(data: bytes, reason: str, **limits: int) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        check_image(data, **limits)
    assert caught.value.reason == reason
    return caught.value


@pytest.mark.parametrize("name", list(samples()))
def test_real_images_are_accepted_with_their_type_and_size(name: str) -> None:
    content_type, data = samples()[name]
    expected_size = (40, 30) if "ani" in name else (64, 48)
    assert sniff(data) == content_type
    assert check_image(data) == CheckedImage(content_type, *expected_size)


def test_the_type_comes_from_the_content_not_the_name() -> None:
    # There is no name or declared type to pass at all: a PNG someone called photo.jpg is still a PNG.
    _, png = samples()["png"]
    assert check_image(png).content_type == "image/png"
    assert sniff(b"\xff\xd8\xff" + png) == "image/jpeg"
    _rejected(b"\xff\xd8\xff" + png, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("name", list(samples()))
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -1, -2])
def test_truncated_images_are_rejected(name: str, keep: float) -> None:
    _, data = samples()[name]
    cut = data[: int(len(data) * keep)] if keep > 0 else data[: int(keep)]
    error = _rejected(cut, "UNSUPPORTED_MEDIA_TYPE")
    assert error.message in {
        "The image is damaged or incomplete",
        "The image is not a PNG, JPEG, GIF or WebP file",
    }


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("run.sh", "echo portico\n")
    return buffer.getvalue()


HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("png", _zip()),
        ("png-animated", b"\x00"),
        ("jpeg", HTML),
        ("jpeg", HTML + b"\xff\xd9"),  # ends in EOI like a JPEG, but the JPEG ended earlier
        ("jpeg-progressive", b"\xff\xd9"),
        ("gif", b"alert(1)"),
        ("gif-animated", b";"),
        ("webp-lossy", HTML),
        ("webp-animated", b"\x00\x00"),
    ],
)
def test_data_after_the_end_of_the_image_is_rejected(name: str, suffix: bytes) -> None:
    _, data = samples()[name]
    error = _rejected(data + suffix, "UNSUPPORTED_MEDIA_TYPE")
    assert error.message == "The image has data after its end"


def test_webp_with_a_riff_size_that_covers_appended_data_is_still_walked() -> None:
    _, data = samples()["webp-lossless"]
    polyglot = bytearray(data + HTML)
    struct.pack_into("<I", polyglot, 4, len(polyglot) - 8)
    _rejected(bytes(polyglot), "UNSUPPORTED_MEDIA_TYPE")


def test_the_classic_gif_javascript_polyglot_is_rejected() -> None:
    # `GIF89a/*<rest of the GIF>*/=alert(1);` is both a GIF (width bytes "/*") and a script; the GIF's own
    # trailer would be the script's final ';'.
    _, gif = samples()["gif"]
    header = bytearray(gif)
    header[6:8] = b"/*"
    without_trailer = bytes(header[:-1])
    for polyglot in (bytes(header) + b"*/=alert(1);", without_trailer + b"*/=alert(1);"):
        _rejected(polyglot, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="1" height="1"/></svg>',
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        HTML,
        b"just some text\n",
        b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        _encode(_picture(), "PDF"),
        _encode(_picture(), "BMP"),
        _encode(_picture(), "TIFF"),
        _encode(_picture(), "ICO"),
        b"\x00",
        b"RIFF\x04\x00\x00\x00WAVE",
        b"\x89PNG",
    ],
)
def test_other_types_are_rejected(data: bytes) -> None:
    error = _rejected(data, "UNSUPPORTED_MEDIA_TYPE")
    assert "Traceback" not in error.message


def test_empty_is_unsupported() -> None:
    assert _rejected(b"", "UNSUPPORTED_MEDIA_TYPE").message == "The image is empty"


def test_size_limit_is_inclusive_and_checked_before_anything_else() -> None:
    _, png = samples()["png"]
    assert check_image(png, max_bytes=len(png)).content_type == "image/png"
    _rejected(png, "PAYLOAD_TOO_LARGE", max_bytes=len(png) - 1)
    _rejected(b"not an image at all", "PAYLOAD_TOO_LARGE", max_bytes=5)


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims ``width`` x ``height`` (CRC fixed up so only the size is wrong)."""
    data = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Records every ``Image.open`` so a test can show Pillow never saw the input."""
    calls: list[bytes] = []
    real_open: Callable[..., Image.Image] = Image.open

    def spy(fp: io.BytesIO, *args: Any, **kwargs: Any) -> Image.Image:
        calls.append(fp.getvalue())
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    return calls


def test_decompression_bomb_is_refused_without_decoding(opened: list[bytes]) -> None:
    bomb = _png_declaring(30_000, 30_000)
    assert len(bomb) < 200
    assert _rejected(bomb, "PAYLOAD_TOO_LARGE").message == "The image has more than 40000000 pixels"
    assert opened == []


def test_pixel_limit_applies_even_above_pillows_own_limit(opened: list[bytes]) -> None:
    # 100 M pixels is in Pillow's DecompressionBombWarning range; the warning (an error under pytest)
    # must never fire, even when a caller asks for a limit higher than Pillow's.
    assert Image.MAX_IMAGE_PIXELS is not None
    _rejected(_png_declaring(10_000, 10_000), "PAYLOAD_TOO_LARGE", max_pixels=10**12)
    _rejected(_png_declaring(70_000, 70_000), "PAYLOAD_TOO_LARGE", max_pixels=10**12)
    assert opened == []


def test_gif_frame_outside_the_screen_counts_toward_the_pixel_limit(opened: list[bytes]) -> None:
    # Pillow grows a GIF's canvas to hold a frame placed far outside the logical screen.
    data = bytearray(samples()["gif"][1])
    descriptor = data.index(b"\x2c\x00\x00\x00\x00")
    struct.pack_into("<HH", data, descriptor + 1, 60_000, 60_000)
    _rejected(bytes(data), "PAYLOAD_TOO_LARGE")
    assert opened == []


def test_webp_canvas_counts_toward_the_pixel_limit(opened: list[bytes]) -> None:
    data = bytearray(samples()["webp-animated"][1])
    assert data[12:16] == b"VP8X"
    data[24:30] = (16_000 - 1).to_bytes(3, "little") * 2
    _rejected(bytes(data), "PAYLOAD_TOO_LARGE")
    assert opened == []


def test_pixel_limit_is_inclusive() -> None:
    _, png = samples()["png"]
    assert check_image(png, max_pixels=64 * 48).width == 64
    _rejected(png, "PAYLOAD_TOO_LARGE", max_pixels=64 * 48 - 1)


@pytest.mark.parametrize("pil_format", ["GIF", "WEBP", "PNG"])
def test_long_animations_are_refused_by_their_decoding_cost(pil_format: str, opened: list[bytes]) -> None:
    frames = FRAME_BUDGET_FACTOR + 2
    data = _animation(pil_format, frames=frames, size=(20, 10))
    assert check_image(data, max_pixels=200 * frames).content_type.startswith("image/")
    error = _rejected(data, "PAYLOAD_TOO_LARGE", max_pixels=200)
    assert error.message == "The animation has too many frames for its size"
    assert len(opened) == 1  # only the accepted call reached Pillow


def test_corrupt_but_well_framed_data_is_rejected_by_the_decoder() -> None:
    # The structure walk accepts this (chunks intact, IEND at the end); the IDAT content is garbage.
    data = bytearray(samples()["png"][1])
    idat = data.index(b"IDAT")
    length = struct.unpack_from(">I", data, idat - 4)[0]
    data[idat + 4 : idat + 4 + length] = bytes(length)
    struct.pack_into(">I", data, idat + 4 + length, zlib.crc32(bytes(data[idat : idat + 4 + length])))
    assert _rejected(bytes(data), "UNSUPPORTED_MEDIA_TYPE").message == "The image is damaged or incomplete"


def _check_never_raises_anything_else(data: bytes) -> None:
    outcome: CheckedImage | ImageRejected
    try:
        outcome = check_image(data)
    except ImageRejected as error:
        outcome = error
    if isinstance(outcome, ImageRejected):
        assert outcome.reason in {"PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"}
        assert outcome.message
    else:
        assert outcome.content_type == sniff(data)
        assert outcome.width * outcome.height > 0


MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"RIFF\x00\x00\x00\x00WEBP", b""]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(MAGIC), st.binary(max_size=512))
def test_random_bytes_only_ever_raise_image_rejected(magic: bytes, tail: bytes) -> None:
    _check_never_raises_anything_else(magic + tail)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(samples())),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    st.sampled_from(["overwrite", "insert", "delete"]),
)
def test_mutated_images_only_ever_raise_image_rejected(
    name: str, edits: list[tuple[float, int]], how: str
) -> None:
    data = bytearray(samples()[name][1])
    for where, value in edits:
        at = int(where * len(data))
        if how == "overwrite":
            data[at] = value
        elif how == "insert":
            data.insert(at, value)
        else:
            del data[at]
    _check_never_raises_anything_else(bytes(data))
