"""Audit events of the auth backend (``portico.auth.v1``): who, from where, what happened — never a secret.

A password, a hash or a token never enters these messages: the AuthAudit message has no field for one.
"""

from __future__ import annotations

import hashlib

from backends.auth.events import AUTH
from meshkit.identity import identity_key
from stubs.events.v1 import events_pb2


def audit_event(
    type: str,
    tenant_id: str,
    *,
    actor: events_pb2.Actor,
    user_id: str = "",
    identifier: str = "",
    session_id: str = "",
    reason: str = "",
) -> events_pb2.Event:
    # Keyed by the account, so the events of one account stay in order; an unknown account's key is a
    # digest of what was typed, so a mistyped password pasted as a username is not in the Kafka key.
    key = (
        user_id
        or "anon-" + hashlib.sha256(f"{tenant_id}:{identity_key(identifier)}".encode()).hexdigest()[:32]
    )
    audit = events_pb2.AuthAudit(
        user_id=user_id, identifier=identifier[:256], session_id=session_id, reason=reason
    )
    return AUTH.event(type, tenant_id, key, actor=actor, entity=audit)
