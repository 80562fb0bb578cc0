"""The contract's validation rules for user fields."""

from __future__ import annotations

import pytest

from backends.users import validation as v


@pytest.mark.parametrize(
    "email", ["john.doe@example.com", "a+tag@sub.example.org", "O'Neil@example.co.uk", "x@a-b.io"]
)
def test_valid_emails(email: str) -> None:
    assert v.check_email(email) == []


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "a@b",
        "a@@b.com",
        "a b@c.com",
        "a@-b.com",
        "a@b..com",
        "@b.com",
        "a@b.c",
        "a@" + "b" * 250 + ".com",
        "x" * 250 + "@example.com",
    ],
)
def test_invalid_emails(email: str) -> None:
    assert v.check_email(email) != []


@pytest.mark.parametrize(
    "name", ["John", "Mary Jane", "O'Brien", "Jean-Luc", "José", "Zoë", "Łukasz", "田中", "D\u2019Artagnan"]
)
def test_valid_names(name: str) -> None:
    assert v.check_name(v.normalise(name), "first_name") == []


def test_decomposed_accents_are_letters_after_normalisation() -> None:
    assert v.check_name(v.normalise("Jose\u0301"), "first_name") == []


@pytest.mark.parametrize(
    "name",
    ["", "J0hn", "John_", "John  Doe", "-John", "John-", "<script>", "Robert'); DROP", "x" * 101, "😀"],
)
def test_invalid_names(name: str) -> None:
    assert v.check_name(name, "first_name") != []


@pytest.mark.parametrize(
    ("phone", "ok"),
    [
        ("+1234567890", True),
        ("+441632960961", True),
        ("1234567890", False),
        ("+0123456", False),
        ("+1 234 567", False),
        ("+1234567890123456", False),
    ],
)
def test_phone_is_e164(phone: str, ok: bool) -> None:
    assert (v.check_phone(phone) == []) is ok


@pytest.mark.parametrize(
    ("username", "ok"),
    [
        ("jdoe", True),
        ("j.doe-2_x", True),
        ("ab", False),
        ("a" * 33, False),
        ("j doe", False),
        ("jdoe!", False),
    ],
)
def test_username_rule(username: str, ok: bool) -> None:
    assert (v.check_username(username) == []) is ok


@pytest.mark.parametrize(
    ("tenant", "ok"),
    [
        ("tenant123", True),
        ("acme_corp-1", True),
        ("", False),
        ("a" * 51, False),
        ("acme corp", False),
        ("acme/../x", False),
    ],
)
def test_tenant_rule(tenant: str, ok: bool) -> None:
    assert (v.check_tenant(tenant) == []) is ok


def test_ids_must_be_uuids() -> None:
    assert v.check_id("0b9f4a8e-5a7e-4c61-9d7c-3f1f6a2b9c10") == []
    for bad in ("507f1f77bcf86cd799439011", "1", "", "0b9f4a8e5a7e4c619d7c3f1f6a2b9c10", "../etc/passwd"):
        assert v.check_id(bad) != []


def test_roles_only_assignable_ones() -> None:
    assert v.check_roles(["user", "admin"]) == []
    assert v.check_roles(["service"]) != []
    assert v.check_roles(["root"]) != []


def test_avatar_url_must_be_http() -> None:
    assert v.check_avatar_url("https://example.com/a.jpg") == []
    for bad in ("javascript:alert(1)", "ftp://x/y", "example.com/a.jpg", "https://" + "a" * 2050):
        assert v.check_avatar_url(bad) != []


def test_pagination_bounds() -> None:
    assert v.check_page(0, 0) == []
    assert v.page_or_default(0, 0) == (1, 20)
    assert [f for f, _ in v.check_page(-1, 101)] == ["page", "page_size"]
    assert v.check_page(1, 100) == []


def test_query_length() -> None:
    assert v.check_query("jo") == []
    assert v.check_query("j") != []
    assert v.check_query("x" * 101) != []


@pytest.mark.parametrize(
    ("email", "username"),
    [("john.doe@example.com", "john.doe"), ("a@x.io", "auser"), ("weird!#name@x.io", "weirdname")],
)
def test_username_from_email(email: str, username: str) -> None:
    assert v.username_from_email(email) == username
    assert v.check_username(username) == []
