"""Multipart uploads onto a request message, as a route's ``uploads`` policy says.

Text parts bind to request fields by name exactly like query parameters (typed, nested ``a.b``,
repeated); each file part named by an ``Upload`` fills its ``bytes_field`` and, when set, its
``content_type_field`` with the declared media type. Limits and media types are checked as soon as a
part's headers arrive, so a refused file is never read to its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from google.protobuf.message import Message

from gateway.multipart import Part
from gateway.transcode.body import UNKNOWN_FIELD
from gateway.transcode.request import bind_query
from gateway.transcode.violations import FieldViolation, TranscodeError
from meshkit.media import sniff_image
from stubs.portico.gateway.v1 import options_pb2

INVALID_FORM = "Invalid form fields"

# Formats recognised by their first bytes; a declared type among them must match the content.
_SNIFFED = ("image/png", "image/jpeg", "image/gif", "image/webp")


class UnsupportedMedia(Exception):
    """A file part whose declared type or content is not accepted (a 415)."""


def _skippable(part: Part) -> bool:
    # What a browser sends for a file input left empty: no name, no content. It means "no file".
    return part.filename == "" and not part.data


class UploadPolicy:
    """The checks of one route's uploads, for one request (it remembers which files it has seen)."""

    def __init__(self, uploads: Iterable[options_pb2.Upload], default_limit: int, fields_limit: int) -> None:
        self._uploads = {u.form_field: u for u in uploads}
        self._default_limit = default_limit
        self._fields_limit = fields_limit
        self._seen: set[str] = set()

    @property
    def fields_limit(self) -> int:
        return self._fields_limit

    def limit_for(self, part: Part) -> int:
        """The part's byte limit; raises at once for a part that can never be accepted."""
        upload = self._uploads.get(part.name)
        if upload is None:
            if part.is_file:
                raise TranscodeError(INVALID_FORM, [(part.name, "is not a file field")])
            return self._fields_limit
        if not part.is_file:
            raise TranscodeError(INVALID_FORM, [(part.name, "must be a file")])
        if part.name in self._seen:
            raise TranscodeError(INVALID_FORM, [(part.name, "only one file is accepted")])
        self._seen.add(part.name)
        if part.filename:  # an empty file input (no filename) is skipped, whatever its type
            self._check_declared(upload, part)
        return upload.max_bytes or self._default_limit

    @staticmethod
    def _check_declared(upload: options_pb2.Upload, part: Part) -> None:
        if upload.content_types and part.content_type not in upload.content_types:
            allowed = ", ".join(upload.content_types)
            raise UnsupportedMedia(f"{part.name!r} must be one of: {allowed}")

    def bind(self, message: Message, parts: list[Part], path: Mapping[str, str]) -> None:
        """Set the message's fields from the parts; TranscodeError or UnsupportedMedia when refused."""
        violations: list[FieldViolation] = []
        texts: list[tuple[str, str]] = []
        for part in parts:
            if not part.is_file:
                try:
                    texts.append((part.name, part.data.decode("utf-8")))
                except UnicodeDecodeError:
                    violations.append((part.name, "must be UTF-8 text"))
                continue
            if _skippable(part):
                continue
            upload = self._uploads[part.name]
            self._check_declared(upload, part)
            self._check_content(upload, part)
            setattr(message, upload.bytes_field, bytes(part.data))
            if upload.content_type_field:
                setattr(message, upload.content_type_field, part.content_type)
        self.bind_fields(message, texts, path, violations)

    def bind_fields(
        self,
        message: Message,
        texts: Iterable[tuple[str, str]],
        path: Mapping[str, str],
        violations: list[FieldViolation] | None = None,
    ) -> None:
        """Bind text fields (multipart text parts, or a urlencoded form's) as query parameters are bound;
        the path's fields and the uploads' own are not theirs to set. TranscodeError when refused."""
        bound = [tuple(p.split(".")) for p in path]
        for upload in self._uploads.values():
            bound += [(upload.bytes_field,), (upload.content_type_field,)]
        violations = [] if violations is None else violations
        bind_query(message, texts, bound, "", violations, unknown=UNKNOWN_FIELD)
        if violations:
            raise TranscodeError(INVALID_FORM, violations)

    @staticmethod
    def _check_content(upload: options_pb2.Upload, part: Part) -> None:
        # A declared type that can be recognised must be what the bytes are (a renamed .exe is not a PNG).
        if upload.content_types and part.content_type in _SNIFFED:
            found = sniff_image(part.data)
            if found is None or found not in upload.content_types:
                raise UnsupportedMedia(f"The content of {part.name!r} is not {part.content_type}")
