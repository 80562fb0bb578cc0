"""The validation rules of users.v1's requests (users.proto), run by the real validator with the wording
clients see in the BadRequest details. They replace the users backend's hand-written checks."""

from __future__ import annotations

import pytest

from meshkit.rpc.interceptors.validation import request_violations
from stubs.users.v1 import users_pb2

UUID = "0b9f4a8e-5a7e-4c61-9d7c-3f1f6a2b9c10"
# A CreateUserRequest with every field valid: each case changes one.
VALID = {"email": "john.doe@example.com", "username": "jdoe", "first_name": "John", "phone": "+1234567890"}


def create(**fields: object) -> dict[str, str]:
    return dict(request_violations(users_pb2.CreateUserRequest(**{**VALID, **fields})))


def update(**fields: object) -> dict[str, str]:
    return dict(request_violations(users_pb2.UpdateUserRequest(user_id=UUID, **fields)))


def test_a_valid_request_has_no_violations() -> None:
    assert create() == {}
    assert update() == {}


@pytest.mark.parametrize(
    "email", ["john.doe@example.com", "a+tag@sub.example.org", "O'Neil@example.co.uk", "x@a-b.io"]
)
def test_valid_emails(email: str) -> None:
    assert create(email=email) == {}


@pytest.mark.parametrize(
    "email",
    [
        "plain",
        "a@b",
        "a@@b.com",
        "a b@c.com",
        "a@-b.com",
        "a@b..com",
        "@b.com",
        "a@b.c",
        "x" * 65 + "@example.com",
        " john@example.com",
    ],
)
def test_invalid_emails(email: str) -> None:
    assert create(email=email) == {"email": "must be a valid email address"}


def test_email_may_be_left_out_of_create_the_backend_requires_it_without_a_username() -> None:
    assert create(email="") == {}
    assert create(email="", username="") == {}  # refused by the users backend, on field email


@pytest.mark.parametrize("password", ["short", "x" * 129])
def test_create_password_length(password: str) -> None:
    assert create(password=password) == {"password": "must be 8-128 characters"}
    assert create(password="") == {}  # no password: a profile that cannot log in yet


def test_long_emails_are_refused_by_length() -> None:
    assert create(email="a@" + "b" * 250 + ".com") == {"email": "must be at most 255 characters"}


@pytest.mark.parametrize(
    "name",
    [
        "John",
        "Mary Jane",
        "O'Brien",
        "Jean-Luc",
        "José",
        "Jose\u0301",
        "Zoë",
        "Łukasz",
        "田中",
        "D\u2019Artagnan",
        "  John  ",  # trimmed by the backend
        "   ",  # blank: "not given", like ""
        "",
    ],
)
def test_valid_names(name: str) -> None:
    assert create(first_name=name, last_name=name) == {}


@pytest.mark.parametrize(
    "name", ["J0hn", "John_", "John  Doe", "-John", "John-", "<script>", "Robert'); DROP", "😀", "\u0301a"]
)
def test_invalid_names(name: str) -> None:
    rule = "must contain only letters, with spaces, hyphens or apostrophes between words"
    assert create(first_name=name, last_name=name) == {"first_name": rule, "last_name": rule}


def test_names_are_at_most_100_characters() -> None:
    assert create(first_name="x" * 100) == {}
    assert create(first_name="x" * 101) == {"first_name": "must be at most 100 characters"}


@pytest.mark.parametrize(
    ("phone", "ok"),
    [
        ("+1234567890", True),
        ("+441632960961", True),
        ("", True),
        ("1234567890", False),
        ("+0123456", False),
        ("+1 234 567", False),
        ("+1234567890123456", False),
    ],
)
def test_phone_is_e164(phone: str, ok: bool) -> None:
    assert create(phone=phone) == ({} if ok else {"phone": "must be in E.164 format, e.g. +1234567890"})


@pytest.mark.parametrize(
    ("username", "ok"),
    [
        ("jdoe", True),
        ("j.doe-2_x", True),
        ("", True),  # CreateUser derives one from the email
        ("ab", False),
        ("a" * 33, False),
        ("j doe", False),
        ("jdoe!", False),
    ],
)
def test_username_rule(username: str, ok: bool) -> None:
    rule = "must be 3-32 characters of letters, digits, '_', '.' or '-'"
    assert create(username=username) == ({} if ok else {"username": rule})


def test_roles_only_assignable_ones_named_once() -> None:
    assert create(roles=["user", "admin"]) == {}
    for bad in (["service"], ["root"], ["user", "root", "x"]):
        assert create(roles=bad) == {"roles": "must be one of: user, admin"}


@pytest.mark.parametrize(
    "url", ["https://example.com/a.jpg", "http://x.io", "HTTPS://Example.com/a?b=c#d", ""]
)
def test_valid_avatar_urls(url: str) -> None:
    assert create(avatar_url=url) == {}


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://x/y",
        "example.com/a.jpg",
        "https://",
        "https:///x",
        "https://" + "a" * 2050,
    ],
)
def test_invalid_avatar_urls(url: str) -> None:
    assert create(avatar_url=url) == {"avatar_url": "must be an http(s) URL of at most 2048 characters"}


def test_every_problem_of_a_request_at_once() -> None:
    problems = create(email="not-an-email", username="x", first_name="J0hn", phone="12345", roles=["root"])
    assert problems.keys() == {"email", "username", "first_name", "phone", "roles"}


@pytest.mark.parametrize(
    "user_id", ["507f1f77bcf86cd799439011", "1", "", "0b9f4a8e5a7e4c619d7c3f1f6a2b9c10", "../x"]
)
def test_ids_must_be_uuids(user_id: str) -> None:
    rule = {"user_id": "must be a user id (UUID)"}
    if user_id:  # GetUser's empty user_id is a missing id (below)
        assert dict(request_violations(users_pb2.GetUserRequest(user_id=user_id))) == rule
    assert dict(request_violations(users_pb2.DeleteUserRequest(user_id=user_id))) == rule
    assert dict(request_violations(users_pb2.UpdateUserRequest(user_id=user_id))) == rule


def test_get_user_takes_its_id_as_user_id_or_as_seed_000s_id_but_not_both() -> None:
    assert request_violations(users_pb2.GetUserRequest(id=UUID)) == []
    assert dict(request_violations(users_pb2.GetUserRequest(id="42"))).keys() == {"id"}
    # Neither, or both: reported on user_id, the field REST clients know.
    assert dict(request_violations(users_pb2.GetUserRequest())) == {
        "user_id": "one of user_id, id must be set"
    }
    both = dict(request_violations(users_pb2.GetUserRequest(user_id=UUID, id=UUID)))
    assert both.keys() == {"user_id"}
    assert "only one" in both["user_id"]


def test_ids_in_any_case_are_uuids() -> None:
    assert request_violations(users_pb2.GetUserRequest(user_id=UUID.upper())) == []


def test_update_ignores_empty_fields_and_checks_the_others() -> None:
    assert update(first_name="", phone="", username="", email="", avatar_url="") == {}
    assert update(first_name="J0hn", email="nope", roles=["root"]).keys() == {"first_name", "email", "roles"}


PAGED = [users_pb2.ListUsersRequest, users_pb2.SearchUsersRequest]


@pytest.mark.parametrize("message", PAGED)
@pytest.mark.parametrize(
    ("page", "page_size", "problems"),
    [
        (None, None, {}),  # not sent: the defaults
        (1, 1, {}),
        (7, 100, {}),
        (0, None, {"page": "must be at least 1"}),
        (-1, None, {"page": "must be at least 1"}),
        (None, 0, {"page_size": "must be between 1 and 100"}),
        (None, 101, {"page_size": "must be between 1 and 100"}),
        (0, 0, {"page": "must be at least 1", "page_size": "must be between 1 and 100"}),
    ],
)
def test_pages(message: type, page: int | None, page_size: int | None, problems: dict[str, str]) -> None:
    fields = {"page": page, "page_size": page_size}
    request = message(**{k: v for k, v in fields.items() if v is not None})
    if message is users_pb2.SearchUsersRequest:
        request.q = "john"
    assert dict(request_violations(request)) == problems


@pytest.mark.parametrize(
    ("q", "ok"),
    [
        ("jo", True),
        ("  jo  ", True),
        ("x" * 100, True),
        ("j", False),
        (" j ", False),
        ("", False),
        ("x" * 101, False),
    ],
)
def test_query_length(q: str, ok: bool) -> None:
    problems = dict(request_violations(users_pb2.SearchUsersRequest(q=q)))
    assert problems == ({} if ok else {"q": "must be 2-100 characters"})


def test_requests_without_rules_pass() -> None:
    assert request_violations(users_pb2.GetMeRequest()) == []
