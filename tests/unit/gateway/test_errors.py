"""The error body: the contract's envelope, or the matched route's error style (a seed's dialect)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.errors import error_envelope
from stubs.portico.gateway.v1 import options_pb2

DETAILS = [{"field": "email", "description": "value must be a valid email address"}]


def _request(shape: options_pb2.ResponseShape | None = None) -> Request:
    state: dict[str, Any] = {"request_id": "req-1"}
    if shape is not None:
        state["error_shape"] = shape
    return Request({"type": "http", "method": "POST", "path": "/", "headers": [], "state": state})


def test_no_route_or_a_plain_shape_is_the_envelope() -> None:
    for request in (_request(), _request(options_pb2.ResponseShape(success_status=201))):
        assert error_envelope(request, 400, "Invalid request", DETAILS) == {
            "error": {
                "code": "BAD_REQUEST",
                "message": "Invalid request",
                "status_code": 400,
                "request_id": "req-1",
                "details": DETAILS,
            }
        }


def test_the_detail_style_is_fastapis() -> None:
    request = _request(options_pb2.ResponseShape(error_style=options_pb2.ERROR_STYLE_DETAIL))
    assert error_envelope(request, 401, "Invalid username or password") == {
        "detail": "Invalid username or password"
    }
    # Per-field problems stay per field, where FastAPI puts a validation error's.
    nested = [*DETAILS, {"field": "user.name", "description": "too long"}]
    assert error_envelope(request, 400, "Invalid request", nested) == {
        "detail": [
            {"loc": ["body", "email"], "msg": "value must be a valid email address", "type": "value_error"},
            {"loc": ["body", "user", "name"], "msg": "too long", "type": "value_error"},
        ]
    }


def test_error_messages_replace_the_message_of_their_code_only() -> None:
    shape = options_pb2.ResponseShape(
        error_style=options_pb2.ERROR_STYLE_DETAIL,
        error_messages={"CONFLICT": "User with these credentials already exists"},
    )
    request = _request(shape)
    assert error_envelope(request, 409, "username is taken") == {
        "detail": "User with these credentials already exists"
    }
    assert error_envelope(request, 404, "User not found") == {"detail": "User not found"}
    enveloped = _request(options_pb2.ResponseShape(error_messages={"CONFLICT": "Taken"}))
    assert error_envelope(enveloped, 409, "username is taken")["error"]["message"] == "Taken"
