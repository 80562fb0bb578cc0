"""The gateway's one error table: complete for gRPC, consistent for HTTP, and what its readers see."""

from __future__ import annotations

import grpc
import pytest

from gateway.openapi.responses import ERROR_SCHEMA, error_responses
from gateway.status_table import (
    BY_REASON,
    BY_STATUS,
    ERROR_CODES,
    FROM_GRPC,
    HTTP_ERRORS,
    code_for,
)
from meshkit.rpc.status import PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE


def test_every_grpc_status_code_has_a_row() -> None:
    assert set(FROM_GRPC) == set(grpc.StatusCode)


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_every_grpc_row_lands_on_a_documented_http_row(code: grpc.StatusCode) -> None:
    # Whatever a backend answers, the OpenAPI document has a response for it.
    assert BY_STATUS[FROM_GRPC[code].status].response is not None


def test_http_rows_are_unique_and_in_status_order() -> None:
    statuses = [error.status for error in HTTP_ERRORS]
    assert statuses == sorted(set(statuses))
    assert all(400 <= status <= 599 for status in statuses)
    names = [error.response for error in HTTP_ERRORS if error.response]
    assert len(names) == len(set(names))


def test_reasons_are_the_backends_own() -> None:
    assert BY_REASON == {PAYLOAD_TOO_LARGE: 413, UNSUPPORTED_MEDIA_TYPE: 415}
    # Only statuses a backend's reason can refine reach 413 / 415.
    refined = {code for code, row in FROM_GRPC.items() if row.refined_by_reason}
    assert refined == {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, "NOT_FOUND"), (405, "METHOD_NOT_ALLOWED"), (418, "BAD_REQUEST"), (502, "INTERNAL_ERROR")],
)
def test_envelope_code_for_listed_and_unlisted_statuses(status: int, code: str) -> None:
    assert code_for(status) == code


def test_openapi_reads_the_table() -> None:
    enum = ERROR_SCHEMA["properties"]["error"]["properties"]["code"]["enum"]
    assert enum == list(ERROR_CODES) == sorted({error.code for error in HTTP_ERRORS})
    documented = {error.response: error.description for error in HTTP_ERRORS if error.response}
    responses = error_responses(documented)
    assert {name: r["description"] for name, r in responses.items()} == documented
