"""The contract's error envelope, asserted exactly: one place that knows what a refusal must look like."""

from __future__ import annotations

from typing import Any

import httpx

# CONTRACT.md's codes (and 405, which the gateway adds with its Allow header).
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
}


def assert_error(
    response: httpx.Response,
    status: int,
    message: str | None = None,
    *,
    details: list[dict[str, str]] | None = None,
    any_details: bool = False,
) -> dict[str, Any]:
    """``response`` is the envelope of ``status``: its code, the echoed request id, and when ``message``
    is given that message and exactly ``details`` (none when None; not checked with ``any_details``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == CODES[status], error
    assert error["status_code"] == status, error
    assert error["request_id"] == response.headers["x-request-id"], error
    if message is not None:
        assert error["message"] == message, error
        if not any_details:
            assert error.get("details") == details, error
    return error


def fields_of(error: dict[str, Any]) -> set[str]:
    """The fields a 400 names in its ``details``."""
    return {detail["field"] for detail in error.get("details", [])}
