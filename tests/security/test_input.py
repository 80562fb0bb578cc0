"""Input validation (ASVS 5 V1/V2/V5): JSON edge cases, content types, oversized and lying bodies and
uploads, multipart forms, and strings meant for an interpreter — each refused with its exact 4xx in the
envelope, or stored as inert text."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from harness.images import image_bytes, large_png
from tests.security.envelope import assert_error, fields_of
from tests.security.people import Person, sign_up

pytestmark = pytest.mark.infra
LOGIN = "/api/v1/auth/login"
POSTS = "/api/v1/posts"
JSON = {"Content-Type": "application/json"}
NOT_JSON = "Request body is not valid JSON"
INVALID_BODY = "Invalid request body"
NOT_A_STRING = [{"field": "password", "description": "must be a string"}]
MiB = 1024 * 1024


def post_raw(
    client: httpx.Client, path: str, body: bytes, content_type: str, **headers: str
) -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": content_type, **headers})


# ---- JSON edge cases (on login: public, and the first thing an attacker tries) ------------------

MALFORMED: dict[str, bytes] = {
    "byte-order-mark": b'\xef\xbb\xbf{"username": "ann", "password": "long-enough-1"}',
    "invalid-utf-8": b'{"username": "\xff\xfe", "password": "long-enough-1"}',
    "utf-16": '{"username": "ann", "password": "long-enough-1"}'.encode("utf-16"),
    "truncated": b'{"username": "ann", "password": ',
    "single-quotes": b"{'username': 'ann'}",
    "trailing-comma": b'{"username": "ann",}',
    "comment": b'{"username": "ann" /* hi */}',
    "integer-of-5000-digits": b'{"username": 1' + b"0" * 5000 + b"}",
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_json_is_a_400(client: httpx.Client, case: str) -> None:
    assert_error(post_raw(client, LOGIN, MALFORMED[case], "application/json"), 400, NOT_JSON)


NOT_STRINGS: dict[str, bytes] = {
    "NaN": b'{"username": "ann", "password": NaN}',
    "Infinity": b'{"username": "ann", "password": -Infinity}',
    "huge-float": b'{"username": "ann", "password": 1e999999}',
    "number": b'{"username": "ann", "password": 12345678901}',
    "object-operator": b'{"username": "ann", "password": {"$ne": ""}}',
    "array": b'{"username": "ann", "password": ["a", "b"]}',
    "true": b'{"username": "ann", "password": true}',
    "lone-surrogate": b'{"username": "ann", "password": "\\ud800abcdefgh"}',
}


@pytest.mark.parametrize("case", list(NOT_STRINGS), ids=list(NOT_STRINGS))
def test_a_value_of_the_wrong_type_is_a_400_naming_the_field(client: httpx.Client, case: str) -> None:
    answer = post_raw(client, LOGIN, NOT_STRINGS[case], "application/json")
    assert_error(answer, 400, INVALID_BODY, details=NOT_A_STRING)


@pytest.mark.parametrize(
    "body", [b"[]", b"null", b'"text"', b"42"], ids=["array", "null", "string", "number"]
)
def test_a_body_that_is_not_an_object_is_a_400(client: httpx.Client, body: bytes) -> None:
    assert_error(post_raw(client, LOGIN, body, "application/json"), 400, "Request body must be a JSON object")


def test_a_duplicate_key_is_a_400_not_last_one_wins(client: httpx.Client) -> None:
    """Two values for one key are ambiguous (a proxy may read the first, Python keeps the last), like two
    Authorization headers: refused, not picked — as the body walk already refuses a field given twice
    under its two names."""
    body = b'{"username": "ann", "username": "bob", "password": "long-enough-1"}'
    error = assert_error(post_raw(client, LOGIN, body, "application/json"), 400)
    assert error["message"] == INVALID_BODY
    assert fields_of(error) == {"username"}


def test_deeply_nested_json_is_a_400_in_the_envelope(client: httpx.Client) -> None:
    """Finding 4: 100 000 brackets made the parser recurse into a 500 that closed the connection."""
    assert_error(post_raw(client, LOGIN, b"[" * 100_000, "application/json"), 400)
    assert client.get("/health").status_code == 200  # and the same connection still serves


def test_a_json_body_past_the_limit_is_a_413_counted_while_read(client: httpx.Client) -> None:
    body = b'{"username": "' + b"a" * (2 * MiB) + b'"}'
    assert_error(
        post_raw(client, LOGIN, body, "application/json"), 413, "The body is larger than 1048576 bytes"
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length at all: chunked, counted as it arrives
        yield b'{"username": "'
        for _ in range(3):
            yield b"a" * MiB
        yield b'"}'

    chunked = client.post(LOGIN, content=chunks(), headers=JSON)
    assert_error(chunked, 413, "The body is larger than 1048576 bytes")


# ---- content types ------------------------------------------------------------------------------

WRONG_TYPES = {
    "text/plain": b'{"username": "ann", "password": "long-enough-1"}',
    "application/xml": b"<login><username>ann</username></login>",
    "application/json-patch+json": b'[{"op": "add", "path": "/roles", "value": ["admin"]}]',
    "": b'{"username": "ann", "password": "long-enough-1"}',
}


@pytest.mark.parametrize("content_type", list(WRONG_TYPES), ids=[t or "none" for t in WRONG_TYPES])
def test_a_body_that_is_not_json_is_a_415(client: httpx.Client, content_type: str) -> None:
    answer = client.post(LOGIN, content=WRONG_TYPES[content_type], headers={"Content-Type": content_type})
    assert_error(answer, 415, "The body must be application/json or application/x-www-form-urlencoded")


# ---- uploads: oversized, lying, polyglot, bombs, odd names -------------------------------------


def upload(client: httpx.Client, user: Person, data: bytes, filename: str, declared: str) -> httpx.Response:
    return client.post(
        POSTS, data={"title": "upload"}, files={"image": (filename, data, declared)}, headers=user.auth
    )


def test_an_image_past_5_mib_is_a_413(client: httpx.Client) -> None:
    user = sign_up(client)
    answer = upload(client, user, large_png(5 * MiB + 1), "big.png", "image/png")
    assert_error(answer, 413, "image is larger than 5242880 bytes")


def test_a_decompression_bomb_is_a_413_before_decoding(client: httpx.Client) -> None:
    user = sign_up(client)
    picture, out = Image.new("1", (10_000, 10_000)), io.BytesIO()  # 100 Mpx in about 12 KiB
    picture.save(out, format="PNG")
    message = "The image has more than 40000000 pixels"
    answer = upload(client, user, out.getvalue(), "bomb.png", "image/png")
    assert_error(answer, 413, message, details=[{"field": "image", "description": message}])


def test_content_that_lies_about_its_type_is_a_415(client: httpx.Client) -> None:
    user = sign_up(client)
    html = b"<html><script>alert(document.cookie)</script></html>"
    assert_error(
        upload(client, user, html, "cat.png", "image/png"), 415, "The content of 'image' is not image/png"
    )


@pytest.mark.parametrize("declared", ["image/svg+xml", "text/html", "application/octet-stream"])
def test_a_type_outside_the_list_is_a_415(client: httpx.Client, declared: str) -> None:
    user = sign_up(client)
    answer = upload(client, user, image_bytes(), "x", declared)
    assert_error(answer, 415, "'image' must be one of: image/png, image/jpeg, image/gif, image/webp")


def test_a_polyglot_image_with_an_appended_archive_is_a_415(client: httpx.Client) -> None:
    user = sign_up(client)
    polyglot = image_bytes() + b"PK\x03\x04" + b"\x00" * 26 + b"payload.html"
    message = "The image has data after its end"
    answer = upload(client, user, polyglot, "x.png", "image/png")
    assert_error(answer, 415, message, details=[{"field": "image", "description": message}])


def test_a_file_name_never_becomes_a_path(client: httpx.Client) -> None:
    user = sign_up(client)
    answer = upload(client, user, image_bytes(), "../../../../etc/passwd.png", "image/png")
    assert answer.status_code == 201, answer.text
    post = answer.json()["data"]
    assert post["image_url"] == f"/api/v1/posts/{post['id']}/image"
    image = client.get(post["image_url"], headers=user.auth)
    assert image.content == image_bytes()
    assert image.headers["x-content-type-options"] == "nosniff"
    assert image.headers["content-security-policy"] == "default-src 'none'; sandbox"


# ---- multipart forms ------------------------------------------------------------------------------


def test_a_form_refuses_an_unknown_field_as_json_does(client: httpx.Client) -> None:
    """Finding 8: a multipart form must refuse fields the route does not have, described as a JSON body
    describes them (JSON says "unknown field")."""
    user = sign_up(client)
    unknown = ["is_admin", "author_id"]
    as_json = client.post(POSTS, json={"title": "t", **dict.fromkeys(unknown, "x")}, headers=user.auth)
    json_error = assert_error(as_json, 400, INVALID_BODY, any_details=True)
    form = client.post(
        POSTS, files=[("title", (None, "t")), *[(name, (None, "x")) for name in unknown]], headers=user.auth
    )
    form_error = assert_error(form, 400, "Invalid form fields", any_details=True)
    assert form_error["details"] == json_error["details"]


def test_a_form_of_many_unknown_parts_is_refused(client: httpx.Client) -> None:
    """Finding 8 as reported: 140 unknown parts beside a valid post must not make a post (201)."""
    user = sign_up(client)
    parts = [("title", (None, "t")), ("content", (None, "c"))] + [(f"f{i}", (None, "z")) for i in range(140)]
    error = assert_error(client.post(POSTS, files=parts, headers=user.auth), 400)
    assert re.fullmatch(r"(The form has more|More) than \d+ parts", error["message"]), error


MULTIPART_ODDITIES = {
    "no-boundary": ("multipart/form-data", b"title=t"),
    "boundary-of-100-chars": ("multipart/form-data; boundary=" + "b" * 100, b"--" + b"b" * 100 + b"--\r\n"),
}


@pytest.mark.parametrize("case", list(MULTIPART_ODDITIES), ids=list(MULTIPART_ODDITIES))
def test_a_multipart_type_without_a_usable_boundary_is_a_415(client: httpx.Client, case: str) -> None:
    user = sign_up(client)
    content_type, body = MULTIPART_ODDITIES[case]
    answer = post_raw(client, POSTS, body, content_type, **user.auth)
    accepted = "application/json, application/x-www-form-urlencoded or multipart/form-data"
    assert_error(answer, 415, f"The body must be {accepted}")


def test_a_part_without_a_name_is_a_400(client: httpx.Client) -> None:
    user = sign_up(client)
    body = (
        b'--B\r\nContent-Disposition: form-data; name="title"\r\n\r\nt\r\n'
        b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--\r\n"
    )
    answer = post_raw(client, POSTS, body, "multipart/form-data; boundary=B", **user.auth)
    assert_error(answer, 400, "A part has no Content-Disposition: form-data with a name")


def test_a_text_field_sent_as_a_file_is_a_400(client: httpx.Client) -> None:
    user = sign_up(client)
    answer = client.post(POSTS, files={"title": ("title.txt", b"t", "text/plain")}, headers=user.auth)
    assert_error(
        answer, 400, "Invalid form fields", details=[{"field": "title", "description": "is not a file field"}]
    )


# ---- strings meant for an interpreter are stored and searched as text --------------------------

PAYLOADS = [
    "' OR '1'='1' --",
    "'; DROP TABLE users; --",
    '"unterminated',
    "NEAR(a b) OR x:*",
    "%_%",
    "<script>alert(1)</script>",
    "{{7*7}}${7*7}",
]


def test_injection_strings_are_inert_text(client: httpx.Client) -> None:
    user = sign_up(client)
    for payload in PAYLOADS:
        created = client.post(POSTS, json={"title": payload, "content": payload}, headers=user.auth)
        assert created.status_code == 201, created.text
        assert (created.json()["data"]["title"], created.json()["data"]["content"]) == (payload, payload)
        found = client.get("/api/v1/users/search", params={"q": payload}, headers=user.auth)
        assert found.status_code == 200, found.text
        assert found.json()["data"]["total"] == 0
    listed = client.get(POSTS, params={"page_size": 100}, headers=user.auth).json()["data"]
    assert listed["total"] == len(PAYLOADS)


QUERY_TAMPERING = {
    "page_size=1e3": ("page_size", "Invalid request parameters"),
    "page_size=99999999999999999999": ("page_size", "Invalid request parameters"),
    "page_size=0x10": ("page_size", "Invalid request parameters"),
    "page=NaN": ("page", "Invalid request parameters"),
    "page=2147483648": ("page", "Invalid request parameters"),
    "page_size=-1": ("page_size", "Invalid request"),
    "page_size=10&page_size=20": ("page_size", "Invalid request parameters"),
    "role=admin": ("role", "Invalid request parameters"),
}


@pytest.mark.parametrize("query", list(QUERY_TAMPERING), ids=list(QUERY_TAMPERING))
def test_a_tampered_query_is_a_400_naming_the_parameter(client: httpx.Client, query: str) -> None:
    user = sign_up(client)
    field, message = QUERY_TAMPERING[query]
    error = assert_error(client.get(f"/api/v1/users?{query}", headers=user.auth), 400)
    assert (error["message"], fields_of(error)) == (message, {field})
