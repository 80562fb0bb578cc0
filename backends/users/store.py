"""Data access for users: the same SQLAlchemy Core statements on SQLite and PostgreSQL.

Pure data access: the service validates, authorizes, caches and records events, and calls these inside
its own transaction (``Database.write()``), so an outbox row commits together with the change. Deleted
users are soft-deleted rows (``deleted_at`` set) that only :meth:`UserStore.get_any` still returns.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Row, Select, and_, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backends.users import search
from backends.users.models import EMAIL_INDEX, USERNAME_INDEX, users
from meshkit.db.database import supported_dialect
from meshkit.identity import identity_key

__all__ = ["UPDATABLE", "DuplicateError", "UserRecord", "UserStore", "key_columns", "search_columns"]

UPDATABLE = frozenset(
    {"username", "email", "first_name", "last_name", "phone", "avatar_url", "roles", "is_active"}
)
_SEARCHED = frozenset({"username", "email", "first_name", "last_name"})
# What a UserRecord holds: not the search text nor the identity keys, which the store derives.
_COLUMNS = [c for c in users.c if not c.name.startswith("search_") and not c.name.endswith("_key")]
_LIVE = users.c.deleted_at.is_(None)
_NEWEST_FIRST = (users.c.created_at.desc(), users.c.id.desc())
_AnyRow: TypeAlias = Row[*tuple[Any, ...]]


@dataclass(frozen=True)
class UserRecord:
    id: str
    tenant_id: str
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str
    avatar_url: str
    roles: tuple[str, ...]
    is_active: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class DuplicateError(Exception):
    """The email or username is already taken by a non-deleted user of the tenant."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already taken")
        self.field = field


def search_columns(*, first_name: str, last_name: str, email: str, username: str) -> dict[str, str]:
    """The indexed text of a user (see :mod:`backends.users.search`)."""
    return {
        "search_name": search.document(first_name, last_name),
        "search_email": search.document(email),
        "search_username": search.document(username),
    }


def key_columns(*, username: str, email: str) -> dict[str, str]:
    """The identity keys of a user, which uniqueness compares (see :mod:`meshkit.identity`)."""
    return {"username_key": identity_key(username), "email_key": identity_key(email)}


def _record(row: _AnyRow) -> UserRecord:
    return UserRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        username=row.username,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        phone=row.phone,
        avatar_url=row.avatar_url,
        roles=tuple(row.roles),
        is_active=bool(row.is_active),
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


# What each driver's unique-violation message names: PostgreSQL the index, SQLite the columns.
_VIOLATIONS = (
    ("email", (EMAIL_INDEX, "users.email_key")),
    ("username", (USERNAME_INDEX, "users.username_key")),
)


def _duplicate_field(error: IntegrityError) -> str | None:
    """Which unique index ``error`` is about."""
    message = str(error.orig)
    for field, markers in _VIOLATIONS:
        if any(marker in message for marker in markers):
            return field
    return None


def _roles(value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("roles must be a sequence of strings")
    return [str(role) for role in value]


def _page(page: int, page_size: int) -> tuple[int, int]:
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")
    return page_size, (page - 1) * page_size


class UserStore:
    """Users of all tenants in one database (``dialect``: ``sqlite`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = supported_dialect(dialect)

    async def create(
        self,
        session: AsyncSession,
        *,
        tenant_id: str,
        username: str,
        email: str,
        first_name: str = "",
        last_name: str = "",
        phone: str = "",
        avatar_url: str = "",
        roles: Sequence[str] = ("user",),
    ) -> UserRecord:
        """Insert an active user; :class:`DuplicateError` when the email or username is taken."""
        await self._check_free(session, tenant_id, email=email, username=username)
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "tenant_id": tenant_id,
            "username": username,
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "phone": phone,
            "avatar_url": avatar_url,
            "roles": list(roles),
            "is_active": True,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            **key_columns(username=username, email=email),
            **search_columns(first_name=first_name, last_name=last_name, email=email, username=username),
        }
        row = await self._write(session, users.insert().values(values).returning(*_COLUMNS))
        assert row is not None
        return _record(row)

    async def get(
        self, session: AsyncSession, tenant_id: str, user_id: str, *, lock: bool = False
    ) -> UserRecord | None:
        """The non-deleted user ``user_id`` of ``tenant_id``, else None; with ``lock``, its row is locked
        until the transaction ends (what an update is compared against cannot change meanwhile)."""
        query = self._select_live(tenant_id, user_id)
        row = (await session.execute(query.with_for_update() if lock else query)).first()
        return _record(row) if row else None

    async def get_any(self, session: AsyncSession, user_id: str) -> UserRecord | None:
        """The user ``user_id`` of any tenant, deleted or not (for checks of tokens)."""
        row = (await session.execute(select(*_COLUMNS).where(users.c.id == user_id))).first()
        return _record(row) if row else None

    async def list(
        self, session: AsyncSession, tenant_id: str, *, page: int, page_size: int
    ) -> tuple[builtins.list[UserRecord], int]:
        """A page of the tenant's non-deleted users, newest first, and their total."""
        limit, offset = _page(page, page_size)
        where = and_(users.c.tenant_id == tenant_id, _LIVE)
        rows = await session.execute(
            select(*_COLUMNS).where(where).order_by(*_NEWEST_FIRST).limit(limit).offset(offset)
        )
        total = await session.scalar(select(func.count()).select_from(users).where(where))
        return [_record(row) for row in rows], int(total or 0)

    async def search(
        self, session: AsyncSession, tenant_id: str, q: str, *, page: int, page_size: int
    ) -> tuple[builtins.list[UserRecord], int]:
        """A page of the tenant's non-deleted users matching ``q``, best first, and their total.

        Never raises on the content of ``q`` (see :mod:`backends.users.search`); a ``q`` without any
        word matches nothing.
        """
        limit, offset = _page(page, page_size)
        terms = search.parse(q)
        if not terms:
            return [], 0
        match = search.match(self.dialect, terms)
        where = and_(users.c.tenant_id == tenant_id, _LIVE, match.condition)
        # The ranking reads every match anyway, so a window count gives the total at no extra cost.
        rows = (
            await session.execute(
                select(*_COLUMNS, func.count().over().label("total"))
                .select_from(match.source)
                .where(where)
                .order_by(match.best_first, *_NEWEST_FIRST)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        if rows:
            total = int(rows[0].total)
        elif offset == 0:
            total = 0
        else:  # past the last page
            total = int(
                await session.scalar(select(func.count()).select_from(match.source).where(where)) or 0
            )
        return [_record(row) for row in rows], total

    async def update(
        self, session: AsyncSession, tenant_id: str, user_id: str, changes: Mapping[str, object]
    ) -> UserRecord | None:
        """Apply ``changes`` (keys of :data:`UPDATABLE`) to a non-deleted user; None when there is none."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        # Locked, so that concurrent updates of first and last name cannot leave a stale search_name.
        current_row = (await session.execute(self._select_live(tenant_id, user_id).with_for_update())).first()
        if current_row is None:
            return None
        if not changes:
            return _record(current_row)
        current = _record(current_row)
        values: dict[str, Any] = dict(changes)
        if "roles" in values:
            values["roles"] = _roles(values["roles"])
        for name in ("username", "email"):
            if name in changes:
                values[f"{name}_key"] = identity_key(str(changes[name]))
        if "email" in changes or "username" in changes:
            await self._check_free(
                session,
                tenant_id,
                email=str(changes["email"]) if "email" in changes else None,
                username=str(changes["username"]) if "username" in changes else None,
                other_than=user_id,
            )
        if _SEARCHED & changes.keys():
            merged = {name: str(changes.get(name, getattr(current, name))) for name in _SEARCHED}
            values.update(search_columns(**merged))
        values["updated_at"] = datetime.now(UTC)
        return await self._update_live(session, tenant_id, user_id, values)

    async def soft_delete(self, session: AsyncSession, tenant_id: str, user_id: str) -> UserRecord | None:
        """Mark a non-deleted user deleted and inactive (the row stays); None when there is none."""
        now = datetime.now(UTC)
        values = {"is_active": False, "deleted_at": now, "updated_at": now}
        return await self._update_live(session, tenant_id, user_id, values)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _select_live(tenant_id: str, user_id: str) -> Select[Any]:
        return select(*_COLUMNS).where(users.c.id == user_id, users.c.tenant_id == tenant_id, _LIVE)

    async def _update_live(
        self, session: AsyncSession, tenant_id: str, user_id: str, values: Mapping[str, Any]
    ) -> UserRecord | None:
        statement = (
            update(users)
            .where(users.c.id == user_id, users.c.tenant_id == tenant_id, _LIVE)
            .values(values)
            .returning(*_COLUMNS)
        )
        row = await self._write(session, statement)
        return _record(row) if row else None

    async def _write(self, session: AsyncSession, statement: Any) -> _AnyRow | None:
        """Run a RETURNING statement in a savepoint, mapping a unique-index violation to DuplicateError.

        The savepoint keeps the caller's transaction usable after the violation (PostgreSQL would
        otherwise refuse every further statement in it).
        """
        try:
            async with session.begin_nested():
                return (await session.execute(statement)).first()
        except IntegrityError as error:
            field = _duplicate_field(error)
            if field is None:
                raise
            raise DuplicateError(field) from error

    async def _check_free(
        self,
        session: AsyncSession,
        tenant_id: str,
        *,
        email: str | None,
        username: str | None,
        other_than: str | None = None,
    ) -> None:
        """Raise DuplicateError when a live user of the tenant has ``email`` or ``username``.

        Compared by :func:`meshkit.identity.identity_key`, exactly as the unique indexes do; the indexes
        remain the guarantee when two transactions pass this check at the same time.
        """
        checks: builtins.list[tuple[str, ColumnElement[bool]]] = []
        if email:  # no email (a username-only user) clashes with nobody's
            checks.append(("email", users.c.email_key == identity_key(email)))
        if username is not None:
            checks.append(("username", users.c.username_key == identity_key(username)))
        if not checks:
            return
        scope = [users.c.tenant_id == tenant_id, _LIVE]
        if other_than is not None:
            scope.append(users.c.id != other_than)
        # One EXISTS per field: each is a lookup in its unique index (an OR would scan the tenant).
        query = select(*(exists().where(*scope, clash) for _, clash in checks))
        taken = (await session.execute(query)).one()
        for (field, _), hit in zip(checks, taken, strict=True):
            if hit:
                raise DuplicateError(field)
