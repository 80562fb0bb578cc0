"""Refresh tokens: opaque, single-use, rotated in families, with reuse detection.

One family per login (or registration). Each refresh spends the family's live token and issues its
child; presenting a spent token again means two parties hold the family, so the whole family is
revoked (RFC 6819 §5.2.2.3, RFC 9700 §4.14). One exception avoids the multi-tab/retry complaints of
Keycloak and Supabase: the immediate parent of the live token, spent less than ``reuse_grace`` ago, is
a concurrent or retried refresh and is refused *without* revoking ("race"). The grace never covers
older tokens (django-oauth-toolkit #1617 let tokens several rotations old be replayed).

Tokens are ``secrets.token_urlsafe(32)`` (256 random bits). Only their SHA-256 is stored: with that much
entropy a plain hash cannot be reversed, so no salt or slow KDF is needed, and lookups stay one index
probe. The plaintext is returned once, in :class:`Issued` / :class:`RotateResult`, whose ``repr`` hides
it.

Every method takes the caller's session, which must be a write transaction (``Database.write()``):
:meth:`RefreshTokens.rotate` relies on it for serialisation (``SELECT … FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backends.auth.models import refresh_families, refresh_tokens

__all__ = ["Issued", "Outcome", "RefreshTokens", "RotateResult", "hash_token", "new_token"]

Outcome: TypeAlias = Literal["rotated", "race", "reuse", "invalid"]
InvalidReason: TypeAlias = Literal["unknown", "revoked", "expired"]

_f = refresh_families.c
_t = refresh_tokens.c
_AnyRow: TypeAlias = Row[*tuple[Any, ...]]
_MAX_PRESENTED = 256  # ours are 43 characters; anything far longer is not worth hashing
_MAX_REASON = 50  # refresh_families.revoked_reason
_PRESENTED_COLUMNS = (
    _t.used_at,
    _t.idle_expires_at,
    _f.family_id,
    _f.user_id,
    _f.tenant_id,
    _f.absolute_expires_at,
    _f.revoked_at,
)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    """A new refresh token. ``token`` is the only copy of the plaintext; it is not in the ``repr``."""

    token: str = field(repr=False)
    family_id: str
    expires_at: datetime  # idle expiry, capped by the family's absolute expiry


@dataclass(frozen=True)
class RotateResult:
    """What :meth:`RefreshTokens.rotate` did.

    - ``rotated``: ``token``/``expires_at`` are the new refresh token; issue a new access token.
    - ``race``: a concurrent or retried refresh of the same token; refused, nothing revoked, the pair
      the other request got stays valid.
    - ``reuse``: a spent token was replayed; the family is now revoked (emit ``token.reuse_detected``).
    - ``invalid``: ``reason`` says why (``unknown``, ``revoked``, ``expired``); nothing changed.

    The ids are set whenever the token was found, for logs and events.
    """

    outcome: Outcome
    reason: InvalidReason | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    family_id: str | None = None
    token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware (UTC) one")
    return now


class RefreshTokens:
    """Refresh-token families: ``idle`` lifetime of each token, ``absolute`` lifetime of a family."""

    def __init__(self, *, idle: timedelta, absolute: timedelta, reuse_grace: timedelta) -> None:
        if not timedelta(0) < idle <= absolute:
            raise ValueError("need 0 < idle <= absolute")
        if not timedelta(0) <= reuse_grace < idle:
            raise ValueError("need 0 <= reuse_grace < idle")
        self.idle = idle
        self.absolute = absolute
        self.reuse_grace = reuse_grace

    async def start_family(
        self, session: AsyncSession, *, user_id: str, tenant_id: str, now: datetime
    ) -> Issued:
        """A new family (a login) and its first token."""
        family_id = str(uuid.uuid4())
        absolute_expires_at = _aware(now) + self.absolute
        await session.execute(
            insert(refresh_families).values(
                family_id=family_id,
                user_id=user_id,
                tenant_id=tenant_id,
                created_at=now,
                absolute_expires_at=absolute_expires_at,
            )
        )
        return await self._issue(session, family_id, None, absolute_expires_at, now)

    async def rotate(self, session: AsyncSession, presented: str, now: datetime) -> RotateResult:
        """Spend ``presented`` and issue its child, or say why not (see :class:`RotateResult`)."""
        _aware(now)
        if not presented or len(presented) > _MAX_PRESENTED:
            return RotateResult("invalid", "unknown")
        presented_hash = hash_token(presented)
        # Locks the token and its family row. A concurrent rotate of the same token waits here and
        # then reads the committed state (PostgreSQL re-reads locked rows after the wait); on SQLite
        # the write transaction already holds the database's write lock.
        row = (
            await session.execute(
                select(*_PRESENTED_COLUMNS)
                .join_from(refresh_tokens, refresh_families)
                .where(_t.token_hash == presented_hash)
                .with_for_update()
            )
        ).first()
        if row is None:
            return RotateResult("invalid", "unknown")
        ids = {"user_id": row.user_id, "tenant_id": row.tenant_id, "family_id": row.family_id}
        if row.revoked_at is not None:
            return RotateResult("invalid", "revoked", **ids)
        if now >= row.absolute_expires_at:
            return RotateResult("invalid", "expired", **ids)
        if row.used_at is None:
            if now >= row.idle_expires_at:
                return RotateResult("invalid", "expired", **ids)
            await session.execute(
                update(refresh_tokens).where(_t.token_hash == presented_hash).values(used_at=now)
            )
            issued = await self._issue(session, row.family_id, presented_hash, row.absolute_expires_at, now)
            return RotateResult("rotated", None, **ids, token=issued.token, expires_at=issued.expires_at)
        # A spent token: its own idle expiry does not matter (it can never be refreshed again); what
        # matters is whether the family is still alive, i.e. whether a replay could still gain anything.
        return await self._spent(session, presented_hash, row.used_at, ids, now)

    async def owner(self, session: AsyncSession, presented: str, now: datetime) -> tuple[str, str] | None:
        """The ``(user_id, tenant_id)`` of the family ``presented`` belongs to, spent or live; no lock. None
        when no refresh could come of it whoever the user is (unknown, revoked or expired): :meth:`rotate`
        would answer "invalid" and change nothing.

        Read before a refresh so that the user can be checked with the users backend outside the
        transaction that rotates (and locks) the token, and only when it matters."""
        _aware(now)
        if not presented or len(presented) > _MAX_PRESENTED:
            return None
        row = (
            await session.execute(
                select(*_PRESENTED_COLUMNS)
                .join_from(refresh_tokens, refresh_families)
                .where(_t.token_hash == hash_token(presented))
            )
        ).first()
        if row is None or row.revoked_at is not None or now >= row.absolute_expires_at:
            return None
        if row.used_at is None and now >= row.idle_expires_at:
            return None
        return row.user_id, row.tenant_id

    async def revoke_family(self, session: AsyncSession, family_id: str, reason: str, now: datetime) -> None:
        """Revoke every token of the family; a family revoked already keeps its first reason."""
        await session.execute(
            update(refresh_families)
            .where(_f.family_id == family_id, _f.revoked_at.is_(None))
            .values(revoked_at=_aware(now), revoked_reason=_reason(reason))
        )

    async def revoke_family_of(
        self,
        session: AsyncSession,
        presented: str,
        reason: str,
        now: datetime,
        *,
        user_id: str | None = None,
    ) -> str | None:
        """Logout with a refresh token: revoke its family, spent token or live; the family id, or None.

        With ``user_id``, only a family of that user is revoked: one user's logout must not end
        another's login.
        """
        _aware(now)
        if not presented or len(presented) > _MAX_PRESENTED:
            return None
        query = (
            select(_f.family_id)
            .join_from(refresh_tokens, refresh_families)
            .where(_t.token_hash == hash_token(presented))
        )
        if user_id is not None:
            query = query.where(_f.user_id == user_id)
        family_id: str | None = await session.scalar(query)
        if family_id is not None:
            await self.revoke_family(session, family_id, reason, now)
        return family_id

    async def revoke_user(self, session: AsyncSession, user_id: str, reason: str, now: datetime) -> int:
        """Revoke every live family of the user (deleted user, logout everywhere); how many."""
        return len(await self.revoke_others(session, user_id, None, reason, now))

    async def revoke_others(
        self, session: AsyncSession, user_id: str, keep: str | None, reason: str, now: datetime
    ) -> list[str]:
        """Revoke every live family of the user but ``keep`` (the caller's own login, when a password
        change spares it); the ids of the families revoked."""
        query = update(refresh_families).where(_f.user_id == user_id, _f.revoked_at.is_(None))
        if keep is not None:
            query = query.where(_f.family_id != keep)
        revoked = await session.execute(
            query.values(revoked_at=_aware(now), revoked_reason=_reason(reason)).returning(_f.family_id)
        )
        return list(revoked.scalars())

    async def purge_expired(self, session: AsyncSession, now: datetime) -> int:
        """Delete the families past their absolute expiry, with their tokens; how many families.

        Spent tokens must be kept until then (they are what detects a replay), and not a moment longer.
        """
        purged = await session.execute(
            delete(refresh_families).where(_f.absolute_expires_at <= _aware(now)).returning(_f.family_id)
        )
        return len(purged.all())

    # -- helpers -------------------------------------------------------------------------------

    async def _issue(
        self,
        session: AsyncSession,
        family_id: str,
        parent_hash: str | None,
        absolute_expires_at: datetime,
        now: datetime,
    ) -> Issued:
        token = new_token()
        expires_at = min(now + self.idle, absolute_expires_at)
        await session.execute(
            insert(refresh_tokens).values(
                token_hash=hash_token(token),
                family_id=family_id,
                parent_hash=parent_hash,
                created_at=now,
                idle_expires_at=expires_at,
            )
        )
        return Issued(token=token, family_id=family_id, expires_at=expires_at)

    async def _spent(
        self,
        session: AsyncSession,
        presented_hash: str,
        used_at: datetime,
        ids: dict[str, Any],
        now: datetime,
    ) -> RotateResult:
        """A spent token was presented: a race within the grace, else a replay that revokes the family."""
        live = (
            await session.execute(
                select(_t.parent_hash, _t.idle_expires_at).where(
                    _t.family_id == ids["family_id"], _t.used_at.is_(None)
                )
            )
        ).first()
        if live is None or now >= live.idle_expires_at:
            # Nothing in the family can be refreshed any more, so a replay cannot gain anything.
            return RotateResult("invalid", "expired", **ids)
        # used_at may be a little after ``now``: the other request read the clock later but locked first.
        if live.parent_hash == presented_hash and now - used_at < self.reuse_grace:
            return RotateResult("race", None, **ids)
        await self.revoke_family(session, ids["family_id"], "reuse", now)
        return RotateResult("reuse", None, **ids)


def _reason(reason: str) -> str:
    if not reason or len(reason) > _MAX_REASON:
        raise ValueError(f"reason must be 1 to {_MAX_REASON} characters")
    return reason
