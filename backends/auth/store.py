"""Data access of the auth backend: credentials here, refresh tokens in :mod:`backends.auth.refresh_tokens`.

Pure data access, the same SQLAlchemy Core statements on SQLite and PostgreSQL. Every method takes the
caller's session, so the service can write its outbox events in the same transaction
(``Database.write()``). Nothing here hashes or checks passwords: the service hands over the argon2id
hash.

Usernames and emails are copies of the users backend's, compared by :func:`meshkit.identity.identity_key`
as there. The copies arrive by events, and events of different users are not ordered against each other:
a name may arrive while another credential still holds it (that user's rename or deletion is on its
way). Such a name is *parked* (its key column NULL, the key waiting in ``<field>_parked``) rather than
refused, and every change that lets go of a key settles the parked names of the tenant, so the end state
does not depend on the order the events came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from sqlalchemy import Column, ColumnElement, Row, case, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backends.auth.models import EMAIL_INDEX, USERNAME_INDEX, credentials
from backends.auth.refresh_tokens import Issued, Outcome, RefreshTokens, RotateResult
from meshkit.db.database import supported_dialect
from meshkit.identity import identity_key

__all__ = [
    "Credential",
    "CredentialStore",
    "DuplicateCredential",
    "Issued",
    "Outcome",
    "RefreshTokens",
    "RotateResult",
]

_c = credentials.c
_COLUMNS = (
    _c.user_id,
    _c.tenant_id,
    _c.username,
    _c.email,
    _c.password_hash,
    _c.roles,
    _c.disabled_at,
    _c.active,
    _c.password_change_required,
    _c.username_parked,
    _c.email_parked,
)
_NAMED = ("username", "email")  # the fields that are login names
_ENABLED = _c.disabled_at.is_(None)
_AnyRow: TypeAlias = Row[*tuple[Any, ...]]
LockMode: TypeAlias = Literal["share", "update"]

# What each driver's unique-violation message names: PostgreSQL the index, SQLite the columns.
_VIOLATIONS = (
    ("email", (EMAIL_INDEX, "credentials.email_key")),
    ("username", (USERNAME_INDEX, "credentials.username_key")),
    ("user_id", ("credentials_pkey", "credentials.user_id")),
)


@dataclass(frozen=True)
class Credential:
    user_id: str
    tenant_id: str
    username: str
    email: str
    password_hash: str = field(repr=False)  # kept out of logs and tracebacks
    roles: tuple[str, ...]
    disabled: bool  # the user was deleted
    active: bool = True  # the profile's is_active; an inactive user is kept but may not log in
    password_change_required: bool = False  # set by an admin's reset until the user changes it
    parked: tuple[str, ...] = ()  # of _NAMED: names held by another credential, no login by them yet


class DuplicateCredential(Exception):
    """``field`` (``username``, ``email``, or ``user_id``) is taken by an enabled credential of the tenant."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already taken")
        self.field = field


def _credential(row: _AnyRow) -> Credential:
    return Credential(
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        username=row.username,
        email=row.email,
        password_hash=row.password_hash,
        roles=tuple(row.roles),
        disabled=row.disabled_at is not None,
        active=bool(row.active),
        password_change_required=bool(row.password_change_required),
        parked=tuple(name for name in _NAMED if getattr(row, f"{name}_parked") is not None),
    )


def _key(field: str) -> Column[Any]:
    return credentials.c[f"{field}_key"]


def _parked(field: str) -> Column[Any]:
    return credentials.c[f"{field}_parked"]


def _roles(roles: Sequence[str]) -> list[str]:
    if isinstance(roles, str):  # a str is a Sequence[str] too: "admin" would become five roles
        raise TypeError("roles must be a sequence of strings, not a string")
    return [str(role) for role in roles]


def _duplicate_field(error: IntegrityError) -> str | None:
    message = str(error.orig)
    for name, markers in _VIOLATIONS:
        if any(marker in message for marker in markers):
            return name
    return None


class CredentialStore:
    """Login credentials of all tenants, one row per user, kept (disabled) after the user is deleted.

    ``dialect`` (``sqlite`` or ``postgresql``, as ``Database.dialect``) is only checked: the statements
    are the same on both.
    """

    def __init__(self, dialect: str | None = None) -> None:
        self.dialect = None if dialect is None else supported_dialect(dialect)

    async def add(
        self,
        session: AsyncSession,
        *,
        user_id: str,
        tenant_id: str,
        username: str,
        email: str,
        password_hash: str,
        roles: Sequence[str],
    ) -> Credential:
        """Insert an enabled credential; :class:`DuplicateCredential` when the username or email is taken."""
        # No email (a user created with a username only): no email key, which no login and no unique
        # index matches, so any number of such users may share the empty email.
        username_key, email_key = identity_key(username), identity_key(email) or None
        await self._check_free(session, tenant_id, username_key=username_key, email_key=email_key)
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "user_id": user_id,
            "tenant_id": tenant_id,
            "username": username,
            "email": email,
            "username_key": username_key,
            "email_key": email_key,
            "password_hash": password_hash,
            "roles": _roles(roles),
            "created_at": now,
            "updated_at": now,
            "disabled_at": None,
        }
        await self._write(session, insert(credentials).values(values))
        return Credential(
            user_id=user_id,
            tenant_id=tenant_id,
            username=username,
            email=email,
            password_hash=password_hash,
            roles=tuple(values["roles"]),
            disabled=False,
        )

    async def find_for_login(
        self, session: AsyncSession, tenant_id: str, identifier: str
    ) -> Credential | None:
        """The enabled credential whose username or email is ``identifier``, ignoring case.

        Usernames cannot contain ``@`` and emails must, so at most one row matches for valid data; if
        both did, the username match wins, so the answer never depends on the query plan.
        """
        key = identity_key(identifier)
        query = (
            select(*_COLUMNS)
            .where(_c.tenant_id == tenant_id, _ENABLED, or_(_c.username_key == key, _c.email_key == key))
            .order_by(case((_c.username_key == key, 0), else_=1))
            .limit(1)
        )
        row = (await session.execute(query)).first()
        return _credential(row) if row else None

    async def get(
        self, session: AsyncSession, user_id: str, *, lock: LockMode | None = None
    ) -> Credential | None:
        """The credential of ``user_id``, disabled or not; with ``lock``, its row is locked (``share``:
        against changes, ``update``: against other lockers too) until the transaction ends (PostgreSQL;
        SQLite's write transactions run one at a time)."""
        query = select(*_COLUMNS).where(_c.user_id == user_id)
        if lock is not None:
            query = query.with_for_update(read=lock == "share")
        row = (await session.execute(query)).first()
        return _credential(row) if row else None

    async def set_password_hash(
        self, session: AsyncSession, user_id: str, password_hash: str, *, change_required: bool | None = None
    ) -> None:
        """Replace the hash (a rehash on login with new parameters, or a password change); with
        ``change_required``, also set whether the next login must ask for a new password (an admin's
        reset sets it, the user's own change clears it; a rehash leaves it)."""
        values: dict[str, Any] = {"password_hash": password_hash, "updated_at": datetime.now(UTC)}
        if change_required is not None:
            values["password_change_required"] = change_required
        await session.execute(update(credentials).where(_c.user_id == user_id).values(values))

    async def update_profile(
        self,
        session: AsyncSession,
        user_id: str,
        *,
        username: str | None = None,
        email: str | None = None,
        roles: Sequence[str] | None = None,
        active: bool | None = None,
    ) -> tuple[str, ...]:
        """Copy a profile change (a ``user.updated`` event); None leaves a field as it is.

        A new username or email that another enabled credential of the tenant still holds is parked, not
        refused (see the module's docstring); returns the fields of this credential left parked. Names it
        lets go of are handed to credentials waiting for them (:meth:`settle`).
        """
        found = (
            await session.execute(select(_c.tenant_id, _c.disabled_at).where(_c.user_id == user_id))
        ).first()
        if found is None:
            return ()
        tenant_id, enabled = found.tenant_id, found.disabled_at is None
        values: dict[str, Any] = {}
        for kind, name in (("username", username), ("email", email)):
            if name is not None:
                key = identity_key(name)
                if not key:  # no email: nothing to claim or log in by (see add)
                    values.update({kind: name, f"{kind}_key": None, f"{kind}_parked": None})
                    continue
                held = enabled and await self._held(session, tenant_id, user_id, kind, key)
                values.update({kind: name, **_claim(kind, key, held=held)})
        if roles is not None:
            values["roles"] = _roles(roles)
        if active is not None:
            values["active"] = active
        if not values:
            return ()
        values["updated_at"] = datetime.now(UTC)
        await self._write_parking(session, user_id, values)
        await self.settle(session, tenant_id)
        return tuple(kind for kind in _NAMED if values.get(f"{kind}_parked") is not None)

    async def settle(self, session: AsyncSession, tenant_id: str) -> int:
        """Give each parked name of the tenant's enabled credentials its key if nobody holds it any more.

        Called after every change that lets go of a key (rename, deletion, removal), so a parked name never
        waits longer than its holder's own event. The longest-parked credential is served first; if it was
        the wrong claimant (its own rename away is still on its way), that rename settles again. Returns how
        many names were settled.
        """
        waiting = or_(_c.username_parked.is_not(None), _c.email_parked.is_not(None))
        rows = (
            await session.execute(
                select(_c.user_id, _c.username_parked, _c.email_parked)
                .where(_c.tenant_id == tenant_id, _ENABLED, waiting)
                .order_by(_c.updated_at, _c.user_id)
            )
        ).all()
        settled = 0
        for row in rows:
            for kind in _NAMED:
                key = getattr(row, f"{kind}_parked")
                if key is None or await self._held(session, tenant_id, row.user_id, kind, key):
                    continue
                try:
                    await self._write(
                        session,
                        update(credentials)
                        .where(_c.user_id == row.user_id, _parked(kind) == key)
                        .values(_claim(kind, key, held=False)),
                    )
                except DuplicateCredential:
                    continue  # taken meanwhile by a concurrent transaction, whose release settles again
                settled += 1
        return settled

    async def disable(self, session: AsyncSession, user_id: str) -> None:
        """No more logins (``user.deleted``); frees the username and email for a new registration."""
        now = datetime.now(UTC)
        freed = await session.execute(
            update(credentials)
            .where(_c.user_id == user_id, _ENABLED)  # a repeated event keeps the first time
            .values(disabled_at=now, updated_at=now, username_parked=None, email_parked=None)
            .returning(_c.tenant_id)
        )
        tenant_id = freed.scalar_one_or_none()
        if tenant_id is not None:
            await self.settle(session, tenant_id)

    async def remove(self, session: AsyncSession, user_id: str) -> None:
        """Delete the row: compensation when a registration fails after the credential was added."""
        removed = await session.execute(
            delete(credentials).where(_c.user_id == user_id).returning(_c.tenant_id, _c.disabled_at)
        )
        row = removed.first()
        if row is not None and row.disabled_at is None:
            await self.settle(session, row.tenant_id)

    async def _write_parking(self, session: AsyncSession, user_id: str, values: dict[str, Any]) -> None:
        """Update the credential; a key a concurrent transaction took after :meth:`_held` looked is parked
        (``values`` then says so), as if it had been seen taken."""
        statement = update(credentials).where(_c.user_id == user_id)
        for _ in range(len(_NAMED) + 1):  # each retry parks one more field
            try:
                await self._write(session, statement.values(values))
                return
            except DuplicateCredential as exc:
                key = values.get(f"{exc.field}_key") if exc.field in _NAMED else None
                if key is None:
                    raise
                values.update(_claim(exc.field, key, held=True))

    # -- helpers -------------------------------------------------------------------------------

    async def _check_free(
        self, session: AsyncSession, tenant_id: str, *, username_key: str, email_key: str | None
    ) -> None:
        """Raise DuplicateCredential when an enabled credential of the tenant has either key.

        Email is reported first, as the users backend does. The unique indexes remain the guarantee
        when two transactions pass this check at once (possible on PostgreSQL).
        """
        checks: list[tuple[str, ColumnElement[bool]]] = [("username", _c.username_key == username_key)]
        if email_key is not None:
            checks.insert(0, ("email", _c.email_key == email_key))
        scope = (_c.tenant_id == tenant_id, _ENABLED)
        # One EXISTS per key: each is a lookup in its unique index.
        taken = (await session.execute(select(*(exists().where(*scope, clash) for _, clash in checks)))).one()
        for (name, _), hit in zip(checks, taken, strict=True):
            if hit:
                raise DuplicateCredential(name)

    @staticmethod
    async def _held(session: AsyncSession, tenant_id: str, user_id: str, field: str, key: str) -> bool:
        """Whether another enabled credential of the tenant holds ``key`` as its ``field``.

        The holder's row is locked (PostgreSQL; SQLite runs one writer at a time): a transaction letting go
        of the key either finishes first, and this finds the key free, or waits for this one to commit, and
        its :meth:`settle` then sees what this one parked.
        """
        holder = (
            select(_c.user_id)
            .where(_c.tenant_id == tenant_id, _ENABLED, _key(field) == key, _c.user_id != user_id)
            .with_for_update()
        )
        return (await session.execute(holder)).first() is not None

    @staticmethod
    async def _write(session: AsyncSession, statement: Any) -> None:
        """Run ``statement`` in a savepoint, mapping a unique violation to DuplicateCredential.

        The savepoint keeps the caller's transaction usable after the violation (PostgreSQL would
        otherwise refuse every further statement in it).
        """
        try:
            async with session.begin_nested():
                await session.execute(statement)
        except IntegrityError as error:
            name = _duplicate_field(error)
            if name is None:
                raise
            raise DuplicateCredential(name) from error


def _claim(field: str, key: str, *, held: bool) -> dict[str, str | None]:
    """The key columns of ``field``: the key itself, or (held by another) NULL with the key parked."""
    if held:
        return {f"{field}_key": None, f"{field}_parked": key}
    return {f"{field}_key": key, f"{field}_parked": None}
