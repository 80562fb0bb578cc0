"""The in-process revocation set: jtis, sessions and "valid after" marks, each forgotten at its expiry."""

from __future__ import annotations

import time

import pytest

from meshkit.auth.revocation_set import JTI, SID, USER, RevocationSet
from meshkit.auth.tokens import Principal
from stubs.events.v1 import events_pb2


def principal(
    *, jti: str = "j1", sid: str = "s1", sub: str = "u1", issued_at: float | None = None
) -> Principal:
    now = time.time() if issued_at is None else issued_at
    return Principal(sub, "t", "", frozenset({"user"}), jti, now, now + 600, "tok", session_id=sid)


def test_a_revoked_jti_refuses_that_token_only() -> None:
    revocations = RevocationSet()
    revocations.add(JTI, "j1", time.time() + 60)
    assert revocations.is_revoked(principal(jti="j1"))
    assert not revocations.is_revoked(principal(jti="j2"))


def test_an_ended_session_refuses_every_token_of_that_login() -> None:
    revocations = RevocationSet()
    revocations.add(SID, "s1", time.time() + 60)
    assert revocations.is_revoked(principal(jti="a", sid="s1"))
    assert not revocations.is_revoked(principal(jti="b", sid="s2"))
    assert not revocations.is_revoked(principal(jti="c", sid=""))


def test_valid_after_refuses_tokens_issued_up_to_it_in_that_tenant() -> None:
    now = time.time()
    revocations = RevocationSet()
    revocations.add(USER, "u1", now + 60, tenant_id="t", valid_after=now)
    assert revocations.is_revoked(principal(sub="u1", issued_at=now - 5))
    assert not revocations.is_revoked(principal(sub="u1", issued_at=now + 1))  # a later login
    assert not revocations.is_revoked(principal(sub="u2", issued_at=now - 5))
    # A later mark moves "valid after" forward, an older (redelivered) one never back.
    revocations.add(USER, "u1", now + 60, tenant_id="t", valid_after=now + 10)
    revocations.add(USER, "u1", now + 60, tenant_id="t", valid_after=now - 100)
    assert revocations.is_revoked(principal(sub="u1", issued_at=now + 5))


def test_expired_revocations_are_ignored_and_pruned() -> None:
    now = time.time()
    revocations = RevocationSet()
    revocations.add(JTI, "gone", now - 1)  # names no valid token any more: not even stored
    revocations.add(JTI, "short", now + 0.05)
    revocations.add(SID, "long", now + 60)
    assert len(revocations) == 2
    revocations.prune(now + 1)
    assert len(revocations) == 1
    assert not revocations.is_revoked(principal(jti="gone", sid="x"))


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown revocation kind"):
        RevocationSet().add("everything", "k", time.time() + 60)


def test_applies_the_published_event_payload() -> None:
    now = time.time()
    revocation = events_pb2.Revocation(kind=USER, key="u1", tenant_id="t")
    revocation.expires_at.FromMicroseconds(int((now + 60) * 1e6))
    revocation.valid_after.FromMicroseconds(int(now * 1e6))
    revocations = RevocationSet()
    revocations.apply(revocation)
    assert revocations.is_revoked(principal(sub="u1", issued_at=now - 1))


async def test_wait_for_jti_answers_when_it_arrives_or_gives_up() -> None:
    revocations = RevocationSet()
    assert not await revocations.wait_for_jti("late", 0.05)
    revocations.add(JTI, "late", time.time() + 60)
    assert await revocations.wait_for_jti("late", 0.05)
