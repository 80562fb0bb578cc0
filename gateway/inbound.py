"""The request message of a matched route, from the path, the query and a JSON, form or multipart body.

Bodies are counted while they are read, never trusted from a Content-Length: JSON bodies up to
``max_body_bytes``; on routes with ``uploads``, ``multipart/form-data`` parts each up to their own
limit (the file's ``max_bytes``, the text fields together ``multipart_fields_bytes``).
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from starlette.requests import Request

from gateway.form import FORM, form_fields, without_oauth_extras
from gateway.multipart import MultipartError, PartTooLarge, boundary_of, read_form
from gateway.routing.rules import Route
from gateway.state import state_of
from gateway.transcode.errors import from_transcode_error
from gateway.transcode.request import build_request
from gateway.transcode.violations import TranscodeError
from gateway.uploads import UnsupportedMedia, UploadPolicy

_JSON = "application/json"


class Rejected(Exception):
    """The request cannot become a request message: answer with this status and message."""

    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused once it passes ``limit`` bytes (counted while reading, not from a header)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"The body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _query(request: Request) -> list[tuple[str, str]]:
    """The decoded query string in order; most requests have none, so nothing is parsed for them."""
    return request.query_params.multi_items() if request.scope.get("query_string") else []


def _rejected(error: TranscodeError) -> Rejected:
    reply = from_transcode_error(error)
    return Rejected(reply.status, reply.message, reply.details)


async def read_message(request: Request, route: Route, path: Mapping[str, str]) -> Message:
    """The route's request message; raises Rejected with the client's error."""
    settings = state_of(request)["settings"]
    content_type = request.headers.get("content-type", "")
    boundary = boundary_of(content_type) if route.policy.uploads else None
    if boundary is not None:
        return await _read_multipart(request, route, path, boundary)
    # A GET or HEAD has no body to bind, unless its rule names one (seed 002's `GET /auth/login`
    # sends its credentials in a body): nothing is read for it.
    bodiless = request.method == "HEAD" or (request.method == "GET" and not route.body)
    body = b"" if bodiless else await _read_body(request, settings.max_body_bytes)
    if body.strip() and route.body and (media := content_type.split(";")[0].strip().lower()) != _JSON:
        if media == FORM and route.body == "*":
            return _form_message(request, route, path, body)
        accepted = f"{_JSON}, {FORM} or multipart/form-data" if route.policy.uploads else f"{_JSON} or {FORM}"
        raise Rejected(415, f"The body must be {accepted}")
    try:
        return build_request(
            message_class(route.input),
            body_rule=route.body,
            path=path,
            query=_query(request),
            body=body,
            max_depth=settings.max_json_depth,
        )
    except TranscodeError as exc:
        raise _rejected(exc) from None


def _form_message(request: Request, route: Route, path: Mapping[str, str], body: bytes) -> Message:
    settings = state_of(request)["settings"]
    policy = UploadPolicy(route.policy.uploads, settings.max_body_bytes, settings.multipart_fields_bytes)
    try:
        # Path and query first, as for a multipart body (the query binds nothing on a `body: "*"` route).
        message = build_request(
            message_class(route.input), body_rule=route.body, path=path, query=_query(request)
        )
        fields = form_fields(body)
        if route.policy.checks_credentials:  # login, refresh: an OAuth client's token request works too
            fields = without_oauth_extras(fields, route.input)
        policy.bind_fields(message, fields, path)
    except TranscodeError as exc:
        raise _rejected(exc) from None
    return message


async def _read_multipart(
    request: Request, route: Route, path: Mapping[str, str], boundary: bytes
) -> Message:
    settings = state_of(request)["settings"]
    policy = UploadPolicy(route.policy.uploads, settings.max_body_bytes, settings.multipart_fields_bytes)
    try:
        parts = await read_form(
            request.stream(), boundary, policy.limit_for, policy.fields_limit, settings.multipart_max_parts
        )
        # Path and query first (the query binds nothing on a `body: "*"` route, so it is checked too).
        message = build_request(
            message_class(route.input),
            body_rule=route.body,
            path=path,
            query=_query(request),
        )
        policy.bind(message, parts, path)
    except PartTooLarge as exc:
        raise Rejected(413, f"{exc.name} is larger than {exc.limit} bytes") from None
    except UnsupportedMedia as exc:
        raise Rejected(415, str(exc)) from None
    except MultipartError as exc:
        raise Rejected(400, str(exc)) from None
    except TranscodeError as exc:
        raise _rejected(exc) from None
    return message
