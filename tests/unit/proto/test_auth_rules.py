"""The validation rules of auth.v1's requests (auth.proto), run by the real validator. The password policy
beyond its length (not the username or email, not a common password) is backends.auth.passwords'."""

from __future__ import annotations

import pytest

from meshkit.rpc.interceptors.validation import request_violations
from stubs.auth.v1 import auth_pb2

VALID = {"username": "olga", "email": "olga@example.com", "password": "correct horse battery"}


def register(**fields: object) -> dict[str, str]:
    return dict(request_violations(auth_pb2.RegisterRequest(**{**VALID, **fields})))


def test_a_valid_registration() -> None:
    assert register() == {}
    assert register(email="") == {}  # optional: the user then logs in by username
    assert (
        register(tenant_id="acme_corp-1", first_name="Olga", last_name="Ivanova", phone="+1234567890") == {}
    )


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"username": ""}, {"username": "is required"}),
        ({"username": "ab"}, {"username": "must be 3-32 characters of letters, digits, '_', '.' or '-'"}),
        ({"email": "nope"}, {"email": "must be a valid email address"}),
        ({"password": "short"}, {"password": "must be 8-128 characters"}),
        ({"password": "x" * 129}, {"password": "must be 8-128 characters"}),
        ({"tenant_id": "a b"}, {"tenant_id": "must be 1-50 characters of letters, digits, '_' or '-'"}),
        ({"tenant_id": "a" * 51}, {"tenant_id": "must be 1-50 characters of letters, digits, '_' or '-'"}),
        ({"phone": "123"}, {"phone": "must be in E.164 format, e.g. +1234567890"}),
        (
            {"first_name": "J0hn"},
            {"first_name": "must contain only letters, with spaces, hyphens or apostrophes between words"},
        ),
    ],
)
def test_invalid_registrations(fields: dict[str, object], problems: dict[str, str]) -> None:
    assert register(**fields) == problems


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"username": "olga", "password": "x"}, {}),
        ({}, {}),  # "username or email is required" is the handler's: it decides with the normalised names
        # Only lengths: the formats' wording is for fields that have the format.
        ({"tenant_id": "t" * 51}, {"tenant_id": "must be at most 50 characters"}),
        ({"username": "u" * 256}, {"username": "must be at most 255 characters"}),
        ({"email": "e" * 256}, {"email": "must be at most 255 characters"}),
        ({"password": "p" * 129}, {"password": "must be at most 128 characters"}),
    ],
)
def test_login_refuses_only_what_names_no_account(
    fields: dict[str, object], problems: dict[str, str]
) -> None:
    assert dict(request_violations(auth_pb2.LoginRequest(**fields))) == problems


UUID = "0b9f4a8e-5a7e-4c61-9d7c-3f1f6a2b9c10"
OLD, NEW = "old-one-1", "new-one-22"


@pytest.mark.parametrize(
    ("request_message", "problems"),
    [
        (auth_pb2.ChangePasswordRequest(old_password=OLD, new_password=NEW), {}),
        (auth_pb2.ChangePasswordRequest(new_password=NEW), {"old_password": "is required"}),
        (
            auth_pb2.ChangePasswordRequest(old_password="o" * 129, new_password=NEW),
            {"old_password": "must be at most 128 characters"},
        ),
        (
            auth_pb2.ChangePasswordRequest(old_password=OLD, new_password=OLD[:5]),
            {"new_password": "must be 8-128 characters"},
        ),
        (auth_pb2.ResetPasswordRequest(user_id=UUID, new_password=NEW), {}),
        (
            auth_pb2.ResetPasswordRequest(user_id="nope", new_password=NEW),
            {"user_id": "must be a user id (UUID)"},
        ),
        (
            auth_pb2.ResetPasswordRequest(user_id=UUID, new_password="n" * 129),
            {"new_password": "must be 8-128 characters"},
        ),
        (auth_pb2.CreateCredentialRequest(user_id=UUID, password=NEW), {}),
        (
            auth_pb2.CreateCredentialRequest(tenant_id="a b", user_id=UUID, password=NEW),
            {"tenant_id": "must be 1-50 characters of letters, digits, '_' or '-'"},
        ),
    ],
)
def test_password_requests(request_message: object, problems: dict[str, str]) -> None:
    assert dict(request_violations(request_message)) == problems  # type: ignore[arg-type]
