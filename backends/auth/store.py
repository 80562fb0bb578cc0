"""Data access of the auth backend: credentials here, refresh tokens in :mod:`backends.auth.refresh_tokens`.

Pure data access, the same SQLAlchemy Core statements on SQLite and PostgreSQL. Every method takes the
caller's session, so the service can write its outbox events in the same transaction
(``Database.write()``). Nothing here hashes or checks passwords: the service hands over the argon2id
hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Row, case, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backends.auth.models import EMAIL_INDEX, USERNAME_INDEX, credentials
from backends.auth.refresh_tokens import Issued, Outcome, RefreshTokens, RotateResult
from meshkit.db.database import supported_dialect

__all__ = [
    "Credential",
    "CredentialStore",
    "DuplicateCredential",
    "Issued",
    "Outcome",
    "RefreshTokens",
    "RotateResult",
    "login_key",
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
)
_ENABLED = _c.disabled_at.is_(None)
_AnyRow: TypeAlias = Row[*tuple[Any, ...]]

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


class DuplicateCredential(Exception):
    """``field`` (``username``, ``email``, or ``user_id``) is taken by an enabled credential of the tenant."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already taken")
        self.field = field


def login_key(value: str) -> str:
    """The case-insensitive form of a username or email, as stored and as looked up."""
    return value.lower()


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
    )


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
        username_key, email_key = login_key(username), login_key(email)
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
        key = login_key(identifier)
        query = (
            select(*_COLUMNS)
            .where(_c.tenant_id == tenant_id, _ENABLED, or_(_c.username_key == key, _c.email_key == key))
            .order_by(case((_c.username_key == key, 0), else_=1))
            .limit(1)
        )
        row = (await session.execute(query)).first()
        return _credential(row) if row else None

    async def get(self, session: AsyncSession, user_id: str) -> Credential | None:
        """The credential of ``user_id``, disabled or not."""
        row = (await session.execute(select(*_COLUMNS).where(_c.user_id == user_id))).first()
        return _credential(row) if row else None

    async def set_password_hash(self, session: AsyncSession, user_id: str, password_hash: str) -> None:
        """Replace the hash (a rehash on login with new parameters, or a password change)."""
        await session.execute(
            update(credentials)
            .where(_c.user_id == user_id)
            .values(password_hash=password_hash, updated_at=datetime.now(UTC))
        )

    async def update_profile(
        self,
        session: AsyncSession,
        user_id: str,
        *,
        username: str | None = None,
        email: str | None = None,
        roles: Sequence[str] | None = None,
        active: bool | None = None,
    ) -> None:
        """Copy a profile change (a ``user.updated`` event); None leaves a field as it is.

        :class:`DuplicateCredential` when another enabled credential of the tenant still holds the new
        username or email (only possible while that user's own change is on its way).
        """
        values: dict[str, Any] = {}
        if username is not None:
            values.update(username=username, username_key=login_key(username))
        if email is not None:
            values.update(email=email, email_key=login_key(email))
        if roles is not None:
            values["roles"] = _roles(roles)
        if active is not None:
            values["active"] = active
        if not values:
            return
        values["updated_at"] = datetime.now(UTC)
        await self._write(session, update(credentials).where(_c.user_id == user_id).values(values))

    async def disable(self, session: AsyncSession, user_id: str) -> None:
        """No more logins (``user.deleted``); frees the username and email for a new registration."""
        now = datetime.now(UTC)
        await session.execute(
            update(credentials)
            .where(_c.user_id == user_id, _ENABLED)  # a repeated event keeps the first time
            .values(disabled_at=now, updated_at=now)
        )

    async def remove(self, session: AsyncSession, user_id: str) -> None:
        """Delete the row: compensation when a registration fails after the credential was added."""
        await session.execute(delete(credentials).where(_c.user_id == user_id))

    # -- helpers -------------------------------------------------------------------------------

    async def _check_free(
        self, session: AsyncSession, tenant_id: str, *, username_key: str, email_key: str
    ) -> None:
        """Raise DuplicateCredential when an enabled credential of the tenant has either key.

        Email is reported first, as the users backend does. The unique indexes remain the guarantee
        when two transactions pass this check at once (possible on PostgreSQL).
        """
        checks: list[tuple[str, ColumnElement[bool]]] = [
            ("email", _c.email_key == email_key),
            ("username", _c.username_key == username_key),
        ]
        scope = (_c.tenant_id == tenant_id, _ENABLED)
        # One EXISTS per key: each is a lookup in its unique index.
        taken = (await session.execute(select(*(exists().where(*scope, clash) for _, clash in checks)))).one()
        for (name, _), hit in zip(checks, taken, strict=True):
            if hit:
                raise DuplicateCredential(name)

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
