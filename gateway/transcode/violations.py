"""The error every request-building step raises: a 400 with one (field, description) per problem."""

from __future__ import annotations

from collections.abc import Sequence

FieldViolation = tuple[str, str]  # (field, description), as in google.rpc.BadRequest


class TranscodeError(Exception):
    """The HTTP request cannot become a request message; the client gets a 400 listing every problem.

    Messages and descriptions are written for API clients: they name fields as the client wrote them
    and never carry protobuf type names or parser internals.
    """

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.violations: list[FieldViolation] = list(violations)
