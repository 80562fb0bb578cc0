"""``application/x-www-form-urlencoded`` bodies: what HTML forms and OAuth-style clients send.

A form is accepted on every route whose rule binds the whole body (``body: "*"``), uploads routes
included (their text fields, without the file). Its fields bind as query parameters do: by name,
dotted for nested fields, repeated for lists, typed by the field. A blank value (``phone=``, what a
form sends for an input left empty) is a field not given.

A route that checks credentials (login, refresh) also takes an OAuth 2.0 token request's form: its
``grant_type`` (``password`` or ``refresh_token``), ``scope``, ``client_id`` and ``client_secret`` are
ignored there, unless the request message has a field of that name.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from google.protobuf.descriptor import Descriptor

from gateway.transcode.violations import TranscodeError
from gateway.uploads import INVALID_FORM

FORM = "application/x-www-form-urlencoded"
# An OAuth 2.0 token request (RFC 6749 §4.3 password grant, §6 refresh) sends these beside the
# credentials; FastAPI's OAuth2PasswordRequestForm (seed 001's kind of client) does too.
OAUTH_GRANTS = frozenset({"password", "refresh_token"})
_OAUTH_EXTRAS = frozenset({"scope", "client_id", "client_secret"})
OAUTH_PARAMETERS = ("grant_type", *sorted(_OAUTH_EXTRAS))


def form_fields(body: bytes) -> list[tuple[str, str]]:
    """The form's non-blank fields in order; TranscodeError when it is not UTF-8 (percent-escapes too)."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=False, errors="strict")
    except UnicodeError:
        raise TranscodeError(INVALID_FORM, [("body", "must be UTF-8, percent-encoded")]) from None
    return pairs


def without_oauth_extras(fields: list[tuple[str, str]], request: Descriptor) -> list[tuple[str, str]]:
    """``fields`` less an OAuth token request's own parameters that ``request`` has no field for (a
    ``grant_type`` other than password or refresh_token stays, and is refused as an unknown field)."""

    def oauth_only(name: str, value: str) -> bool:
        if name in request.fields_by_name:
            return False
        return name in _OAUTH_EXTRAS or (name == "grant_type" and value in OAUTH_GRANTS)

    return [(name, value) for name, value in fields if not oauth_only(name, value)]
