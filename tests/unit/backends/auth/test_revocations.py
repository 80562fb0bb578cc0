"""A stored revocation's Redis copy and its event: the keys and values every verifier reads."""

from __future__ import annotations

import time

from backends.auth.revocations import Mark
from meshkit.auth.revocation import revoked_jti_key, revoked_sid_key, valid_after_key
from meshkit.auth.revocation_feed import REVOCATIONS_TOPIC
from meshkit.auth.revocation_set import JTI, SID, USER, RevocationSet
from meshkit.auth.tokens import Principal


def test_each_kind_has_its_redis_key_and_value() -> None:
    assert Mark(JTI, "j", "t", 1.0).redis_key() == revoked_jti_key("t", "j")
    assert Mark(SID, "s", "t", 1.0).redis_key() == revoked_sid_key("t", "s")
    user = Mark(USER, "u", "t", 1.0, valid_after=123.5)
    assert user.redis_key() == valid_after_key("t", "u")
    assert user.redis_value() == "123.5"
    assert Mark(JTI, "j", "t", 1.0).redis_value() == "1"


def test_the_event_round_trips_into_a_verifiers_set() -> None:
    now = time.time()
    event = Mark(USER, "u", "t", now + 600, valid_after=now).event()
    assert event.type == "user.sessions_ended"
    assert event.entity_id == "u"
    assert REVOCATIONS_TOPIC == "portico.revocations.v1"
    revocations = RevocationSet()
    revocations.apply(event.revocation)
    before = Principal("u", "t", "", frozenset(), "j", now - 1, now + 600, "tok")
    after = Principal("u", "t", "", frozenset(), "k", now + 1, now + 600, "tok")
    assert revocations.is_revoked(before)
    assert not revocations.is_revoked(after)
