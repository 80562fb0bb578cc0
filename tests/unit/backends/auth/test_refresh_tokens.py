"""The parts of refresh tokens that need no database: token format, hashing, settings, what is printed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from backends.auth.refresh_tokens import Issued, RefreshTokens, RotateResult, hash_token, new_token

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_tokens_are_256_random_bits_in_base64url() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in tokens:
        assert len(token) == 43  # ceil(256 / 6) characters, no padding
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_the_stored_form_is_the_sha256_hex() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(hash_token(new_token())) == 64


def test_the_plaintext_is_never_in_a_repr() -> None:
    token = new_token()
    issued = Issued(token=token, family_id="f", expires_at=NOW)
    result = RotateResult("rotated", None, "u", "t", "f", token=token, expires_at=NOW)
    assert token not in repr(issued)
    assert token not in repr(result)
    assert "family_id='f'" in repr(result)


@pytest.mark.parametrize(
    ("idle", "absolute", "grace"),
    [
        (timedelta(0), timedelta(days=30), timedelta(seconds=10)),  # no idle lifetime
        (timedelta(days=31), timedelta(days=30), timedelta(seconds=10)),  # idle beyond absolute
        (timedelta(days=7), timedelta(days=30), timedelta(seconds=-1)),  # negative grace
        (timedelta(minutes=1), timedelta(days=30), timedelta(minutes=1)),  # grace as long as idle
    ],
)
def test_inconsistent_lifetimes_are_refused(idle: timedelta, absolute: timedelta, grace: timedelta) -> None:
    with pytest.raises(ValueError, match="need"):
        RefreshTokens(idle=idle, absolute=absolute, reuse_grace=grace)


def test_a_zero_grace_is_allowed() -> None:
    tokens = RefreshTokens(idle=timedelta(days=7), absolute=timedelta(days=30), reuse_grace=timedelta(0))
    assert tokens.reuse_grace == timedelta(0)


async def test_naive_times_are_refused_before_any_query() -> None:
    tokens = RefreshTokens(idle=timedelta(days=7), absolute=timedelta(days=30), reuse_grace=timedelta(0))
    naive = datetime(2030, 1, 1)  # naive on purpose
    with pytest.raises(ValueError, match="naive"):
        await tokens.rotate(None, "token", naive)  # type: ignore[arg-type]  # no session is reached
