"""meshkit.identity: the one key that decides whether two login names are the same identity."""

from __future__ import annotations

import pytest

from meshkit.identity import DEFAULT_TENANT, LoginAccount, identity_key, login_account

FULLWIDTH_BOB = "\uff22\uff2f\uff22"  # "BOB" in fullwidth letters
FULLWIDTH_EMAIL = "\uff42\uff4f\uff42\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d"
DOTTED_CAPITAL_I = "\u0130"  # Turkish capital I with a dot above
DOTLESS_I = "\u0131"  # Turkish small dotless i


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Alice", "alice"),
        ("ALICE@Example.COM", "alice@example.com"),
        ("Stra\u00dfe", "STRASSE"),  # full case folding: sharp s is "ss"
        ("\u1e9e", "ss"),  # and so is its capital
        (FULLWIDTH_BOB, "bob"),  # fullwidth letters are their plain forms
        (FULLWIDTH_EMAIL, "bob@example.com"),
        ("\ufb01le", "FILE"),  # the "fi" ligature is its two letters
        ("\ufb00", "ff"),
        ("  Bob\t", "bob"),  # surrounding spaces are not part of a name
        ("A\u030a", "\u00c5"),  # A + combining ring is the composed letter
        ("\u01c4", "\u01c6"),  # the DZ-with-caron digraph in capital and small form
    ],
)
def test_names_that_are_one_identity_share_a_key(one: str, other: str) -> None:
    assert identity_key(one) == identity_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("bob", "bobby"),
        ("bo b", "bob"),  # inner spaces stay
        # The Turkish i's fold the locale-independent way: the dotted capital is i plus a combining dot
        # and the dotless small i stays itself, so neither becomes a plain "i" nor merges with it.
        (DOTTED_CAPITAL_I, "i"),
        (DOTLESS_I, "i"),
        ("a.b", "ab"),
    ],
)
def test_different_names_keep_different_keys(one: str, other: str) -> None:
    assert identity_key(one) != identity_key(other)


def test_turkish_capitals_fold_to_stable_keys() -> None:
    assert identity_key(DOTTED_CAPITAL_I + "STANBUL") == identity_key("i\u0307stanbul") == "i\u0307stanbul"
    assert identity_key("ISTANBUL") == "istanbul"
    assert identity_key(DOTLESS_I.upper()) == "i"  # the capital of the dotless i is the plain I


@pytest.mark.parametrize(
    "name",
    [
        "Stra\u00dfe",
        DOTTED_CAPITAL_I + "stanbul",
        FULLWIDTH_BOB,
        "\ufb01",
        "  \u01c4emal ",
        "\u03a3\u038a\u03a3",
        "\u01c5",
    ],
)
def test_the_key_of_a_key_is_itself(name: str) -> None:
    key = identity_key(name)
    assert identity_key(key) == key


def test_ascii_names_keep_their_lower_case_form() -> None:
    # What valid usernames and emails are today: their key is what lower() gave, so existing rows keep
    # their identity when the key columns are backfilled.
    for name in ("Kim.Lee-2", "ADMIN", "First.Last+tag@Example.co.uk"):
        assert identity_key(name) == name.lower()


@pytest.mark.parametrize(
    ("username", "email"),
    [
        (" bob", ""),
        ("bob\t", ""),
        ("BOB", ""),
        (FULLWIDTH_BOB, ""),
        ("bob", "junk@example.com"),  # the email beside a username is not looked up
        ("bob", "\x00" * 300),
    ],
)
def test_every_spelling_of_a_username_names_one_account(username: str, email: str) -> None:
    assert login_account("acme", username, email) == LoginAccount("acme", "bob", username.strip())


@pytest.mark.parametrize("username", ["", "   ", "\t\n", "\u3000"])  # U+3000: the ideographic space
def test_a_blank_username_falls_back_to_the_email(username: str) -> None:
    account = login_account("acme", username, " Bob@Example.COM ")
    assert (account.name, account.given) == ("bob@example.com", "Bob@Example.COM")


def test_an_attempt_that_names_nobody_has_an_empty_name() -> None:
    assert login_account("acme", " ", "") == LoginAccount("acme", "")
    assert login_account("acme") == LoginAccount("acme", "")


def test_the_tenant_is_taken_as_auth_takes_it() -> None:
    # Empty is the default tenant; otherwise the tenant id is compared as it is (tenant ids are ids,
    # not names: "Acme" is another tenant, one with no accounts unless someone registered it).
    assert login_account("", "bob").tenant_id == DEFAULT_TENANT == "default"
    assert login_account("Acme", "bob").tenant_id == "Acme"


def test_the_username_and_the_email_of_one_account_are_two_names() -> None:
    # Telling that they are one account takes a lookup, which only auth does (its lockout counts both).
    assert login_account("acme", "bob").name != login_account("acme", "", "bob@example.com").name
