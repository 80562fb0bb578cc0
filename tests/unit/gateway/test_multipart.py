"""The streaming multipart reader and the upload binding, without a server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.multipart import FormReader, MultipartError, Part, PartTooLarge, boundary_of, read_form
from gateway.transcode.violations import TranscodeError
from gateway.uploads import UnsupportedMedia, UploadPolicy
from meshkit.media import sniff_image as sniff
from stubs.portico.gateway.v1 import options_pb2
from stubs.posts.v1 import posts_pb2

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40
IMAGE = options_pb2.Upload(
    form_field="image",
    bytes_field="image",
    content_type_field="image_content_type",
    max_bytes=1000,
    content_types=["image/png", "image/jpeg"],
)


def body(*parts: tuple[str, str | None, str | None, bytes], boundary: str = "XyZ") -> bytes:
    out = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def parse(raw: bytes, chunk: int, limit: int = 10_000, text_limit: int = 10_000) -> list[Part]:
    reader = FormReader(b"XyZ", lambda part: limit, text_limit)
    for i in range(0, len(raw), chunk):
        reader.feed(raw[i : i + chunk])
    return reader.close()


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 100_000])
def test_parts_survive_any_chunking(chunk: int) -> None:
    # Content that contains CRLFs, dashes and a near-miss of the delimiter.
    tricky = b"line\r\n--XyQ\r\n--Xy\r\n-\r\nend\r\n"
    raw = b"preamble\r\n" + body(
        ("title", None, None, "Grüße".encode()), ("image", "a.png", "image/png", tricky)
    )
    parts = parse(raw, chunk)
    assert [(p.name, p.filename, p.content_type, bytes(p.data)) for p in parts] == [
        ("title", None, "text/plain", "Grüße".encode()),
        ("image", "a.png", "image/png", tricky),
    ]


def test_boundary_of_reads_only_form_data() -> None:
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    assert boundary_of("multipart/form-data; charset=utf-8; boundary=xyz") == b"xyz"
    assert boundary_of("multipart/mixed; boundary=xyz") is None
    assert boundary_of("multipart/form-data") is None
    assert boundary_of("multipart/form-data; boundary=" + "x" * 71) is None


@pytest.mark.parametrize(
    "raw",
    [
        body(("a", None, None, b"1"))[:-9],  # no closing boundary
        b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--\r\n",  # no Content-Disposition
        b"--XyZ\r\nbroken header\r\n\r\nx\r\n--XyZ--\r\n",
        b"--XyZ\r\n" + b"X-Long: " + b"a" * 9000,  # headers that never end
        b"x" * 9000,  # a preamble without any boundary
    ],
)
def test_malformed_bodies_are_refused(raw: bytes) -> None:
    with pytest.raises(MultipartError):
        parse(raw, 512)


def test_a_part_over_its_limit_is_refused_while_reading() -> None:
    """The reader pulls only about the limit from a 50 MiB body before refusing it."""
    limit = 5 * 1024 * 1024
    pulled = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal pulled
        head = b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        yield head
        for _ in range(50 * 16):
            pulled += 64 * 1024
            yield b"\0" * (64 * 1024)

    async def run() -> None:
        await read_form(chunks(), b"XyZ", lambda part: limit, 1000)

    with pytest.raises(PartTooLarge) as refused:
        asyncio.run(run())
    assert refused.value.limit == limit
    assert limit < pulled <= limit + 128 * 1024


def test_the_number_of_parts_is_bounded() -> None:
    three = [("title", None, None, b"t")] * 3
    at_limit = FormReader(b"XyZ", lambda part: 100, 1000, max_parts=3)
    at_limit.feed(body(*three))
    assert len(at_limit.close()) == 3
    over = FormReader(b"XyZ", lambda part: 100, 1000, max_parts=3)
    with pytest.raises(MultipartError, match="more than 3 parts"):
        over.feed(body(*three, ("title", None, None, b"t")))


def test_text_fields_share_one_budget() -> None:
    raw = body(("a", None, None, b"x" * 60), ("b", None, None, b"y" * 60))
    with pytest.raises(PartTooLarge) as refused:
        parse(raw, 16, text_limit=100)
    assert refused.value.name == "form fields"


def test_sniffing_recognises_the_image_formats() -> None:
    assert sniff(PNG) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff(b"GIF89a...") == "image/gif"
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff(b"MZ\x90\0") is None


def bind(raw: bytes, path: dict[str, str] | None = None) -> posts_pb2.UpdatePostRequest:
    policy = UploadPolicy([IMAGE], default_limit=10_000, fields_limit=10_000)
    reader = FormReader(b"XyZ", policy.limit_for, policy.fields_limit)
    reader.feed(raw)
    message = posts_pb2.UpdatePostRequest()
    for name, value in (path or {}).items():
        setattr(message, name, value)
    policy.bind(message, reader.close(), path or {})
    return message


def test_binding_types_fields_and_passes_the_file_and_its_type() -> None:
    message = bind(
        body(("title", None, None, b"T"), ("image", "a.png", "image/png", PNG)), path={"post_id": "p1"}
    )
    assert message.post_id == "p1"
    assert message.title == "T"
    assert message.HasField("title")
    assert not message.HasField("content")
    assert (message.image, message.image_content_type) == (PNG, "image/png")


@pytest.mark.parametrize(
    ("raw", "error", "violation"),
    [
        # A form's unknown field is refused as a JSON body's is, in the same words.
        (body(("colour", None, None, b"red")), TranscodeError, ("colour", "unknown field")),
        (body(("post_id", None, None, b"other")), TranscodeError, ("post_id", "unknown field")),
        (body(("image_content_type", None, None, b"x")), TranscodeError, None),
        (body(("image", None, None, b"text")), TranscodeError, ("image", "must be a file")),
        (body(("title", "t.txt", "text/plain", b"x")), TranscodeError, ("title", "is not a file field")),
        (body(("title", None, None, b"\xff\xfe")), TranscodeError, ("title", "must be UTF-8 text")),
        (body(("image", "a.gif", "image/gif", b"GIF89a")), UnsupportedMedia, None),
        (body(("image", "a.png", "image/png", b"GIF89a, not a PNG")), UnsupportedMedia, None),
        (body(("image", "a.png", "image/png", b"MZ, not an image")), UnsupportedMedia, None),
        (
            body(("image", "a.png", "image/png", PNG), ("image", "b.png", "image/png", PNG)),
            TranscodeError,
            ("image", "only one file is accepted"),
        ),
    ],
)
def test_binding_refusals(raw: bytes, error: type[Exception], violation: tuple[str, str] | None) -> None:
    with pytest.raises(error) as refused:
        bind(raw, path={"post_id": "p1"})
    if violation is not None:
        assert isinstance(refused.value, TranscodeError)
        assert violation in refused.value.violations


def test_a_file_over_the_upload_limit_is_too_large() -> None:
    with pytest.raises(PartTooLarge) as refused:
        bind(body(("image", "a.png", "image/png", PNG + b"\0" * 1000)))
    assert (refused.value.name, refused.value.limit) == ("image", 1000)


def test_an_empty_browser_file_input_means_no_file() -> None:
    message = bind(body(("title", None, None, b"T"), ("image", "", "application/octet-stream", b"")))
    assert message.image == b""
    assert message.image_content_type == ""
