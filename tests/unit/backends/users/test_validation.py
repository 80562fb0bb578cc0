"""What the users backend derives from request fields (their rules: tests/unit/proto/test_users_rules.py)."""

from __future__ import annotations

import pytest

from backends.users.validation import username_from_email
from meshkit.rpc.interceptors.validation import request_violations
from stubs.users.v1 import users_pb2


@pytest.mark.parametrize(
    ("email", "username"),
    [("john.doe@example.com", "john.doe"), ("a@x.io", "auser"), ("weird!#name@x.io", "weirdname")],
)
def test_username_from_email(email: str, username: str) -> None:
    assert username_from_email(email) == username
    assert request_violations(users_pb2.CreateUserRequest(email=email, username=username)) == []
