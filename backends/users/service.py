"""gRPC handlers of ``users.v1.UserService``: validate, authorize, store, cache, record events.

Authorization (the caller is the verified token's principal):
- reads stay inside the caller's tenant; another tenant's user is simply not found;
- admins create, update and delete anyone in their tenant; the auth backend (role ``service``) creates,
  and deletes a profile whose registration failed half-way;
- a user updates and deletes themself; ``email``, ``roles`` and ``is_active`` are admin-only.
Every change writes its event to the outbox in the same transaction, then invalidates the cache. A
change of roles or a deactivation also ends the user's sessions (see :func:`ends_sessions`).

Who may call is the authenticator's answer alone (``current_principal()``: a valid token that no
revocation mark refuses); no call reads the caller's profile to find out. Every way a user stops being
allowed ends their sessions — deletion, deactivation and a change of roles here
(:meth:`UserService._end_sessions`: this process's in-process set at once, Redis for every other
verifier, auth's durable mark and revocation stream for all), "log out everywhere" in auth — so a profile
read would only repeat the revocation check. GetMe still refuses a caller whose own profile is gone or
inactive: it reads that profile anyway.

GetUser and GetMe declare the cache keys they read first (:data:`PREFETCH`), so a warm read is one
Redis round trip together with the token's revocation marks.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

import grpc
from redis.exceptions import RedisError

from backends.users.cache import UserCache
from backends.users.convert import user_message
from backends.users.credentials import CredentialFailed, Credentials
from backends.users.events import USERS
from backends.users.store import DuplicateError, UserRecord, UserStore
from backends.users.validation import username_from_email
from meshkit.auth.interceptor import current_principal
from meshkit.auth.prefetch import Prefetch
from meshkit.auth.revocation import VALID_AFTER_TTL_SECONDS, end_sessions
from meshkit.auth.revocation_set import USER, RevocationSet
from meshkit.auth.tokens import Principal
from meshkit.db.database import Database
from meshkit.events.outbox import Outbox
from meshkit.finishing import Finishing
from meshkit.redis_client import RedisClient
from meshkit.rpc.context import Context, actor
from meshkit.rpc.status import INVALID_REQUEST, abort
from meshkit.validation import is_uuid, normalise, page_or_default
from stubs.users.v1 import users_pb2, users_pb2_grpc

log = logging.getLogger(__name__)

ADMIN, SERVICE = "admin", "service"
DEFAULT_ROLES = ("user",)


async def _deny(context: Context, message: str = "Not allowed") -> NoReturn:
    await abort(context, grpc.StatusCode.PERMISSION_DENIED, message)


async def _not_found(context: Context) -> NoReturn:
    await abort(context, grpc.StatusCode.NOT_FOUND, "User not found")


@dataclass(frozen=True)
class UsersDeps:
    """Everything :class:`UserService` works with, built once by the backend's entry point."""

    db: Database
    store: UserStore
    cache: UserCache
    outbox: Outbox
    redis: RedisClient
    revocations: RevocationSet  # this process's in-process revocations (its authenticator's)
    credentials: Credentials  # the auth backend, which stores the password of a user created with one
    users_topic: str = USERS.topic  # where user events go (`PORTICO_USER_EVENTS_TOPIC`)


class UserService(users_pb2_grpc.UserServiceServicer):
    def __init__(self, deps: UsersDeps) -> None:
        self._db = deps.db
        self._store = deps.store
        self._cache = deps.cache
        self._outbox = deps.outbox
        self._redis = deps.redis
        self._revocations = deps.revocations
        self._topic = deps.users_topic
        self._credentials = deps.credentials
        self._finishing = Finishing("user creation")

    # -- helpers -------------------------------------------------------------------------------

    async def _cached_user(self, tenant_id: str, user_id: str) -> users_pb2.User | None:
        async def load() -> users_pb2.User | None:
            async with self._db.read() as session:
                record = await self._store.get(session, tenant_id, user_id)
            return user_message(record) if record else None

        return await self._cache.get(tenant_id, user_id, load)

    async def _tenant(self, context: Context, principal: Principal, requested: str) -> str:
        if requested and requested != principal.tenant_id:
            await _deny(context, "The tenant does not match the token")
        return principal.tenant_id

    async def _committed_change(self, tenant_id: str, user_id: str) -> None:
        await self._cache.invalidate(tenant_id, user_id)

    # -- RPCs ------------------------------------------------------------------------------------

    async def CreateUser(
        self, request: users_pb2.CreateUserRequest, context: Context
    ) -> users_pb2.CreateUserResponse:
        principal = current_principal()
        if not (principal.has_role(ADMIN) or principal.has_role(SERVICE)):
            await _deny(context, "Only admins can create users")
        tenant_id = await self._tenant(context, principal, request.tenant_id)
        # The proto's rules passed (meshkit.rpc.interceptors.validation); what is stored is normalised.
        fields = {name: normalise(getattr(request, name)) for name in _PROFILE_FIELDS}
        if not (fields["username"] or fields["email"]):
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                INVALID_REQUEST,
                violations=[("email", "is required when username is empty")],
            )
        roles = tuple(dict.fromkeys(request.roles)) or DEFAULT_ROLES
        derived = not fields["username"]
        username = fields["username"] or username_from_email(fields["email"])
        for attempt in range(4):
            try:
                record = await self._create(
                    context, principal, tenant_id, {**fields, "username": username}, roles
                )
                break
            except DuplicateError as exc:
                if not (derived and exc.field == "username" and attempt < 3):
                    await abort(
                        context,
                        grpc.StatusCode.ALREADY_EXISTS,
                        f"A user with this {exc.field} already exists",
                    )
                # A username we made up is taken: try the same stem with a random suffix.
                username = f"{username[:27]}-{secrets.token_hex(2)}"
        await self._committed_change(tenant_id, record.id)  # drops a cached "absent" for the new id
        if request.password:
            # Run to its end even if the caller goes away meanwhile: cut short, the profile would hold its
            # name and email without a credential to log in with (meshkit.finishing).
            await self._finishing.run(
                self._add_credential(context, principal, tenant_id, record.id, request.password)
            )
        return users_pb2.CreateUserResponse(user=user_message(record), id=record.id, status="created")

    async def _add_credential(
        self, context: Context, principal: Principal, tenant_id: str, user_id: str, password: str
    ) -> None:
        try:
            await self._credentials.create(context, principal, tenant_id, user_id, password)
        except CredentialFailed as exc:
            # No profile without its credential: take it back (as auth's Register does), then answer
            # what auth said. A credential stored after all is disabled by the user.deleted event.
            await self._take_back(context, principal, tenant_id, user_id)
            await abort(context, exc.code, exc.details, trailers=exc.trailers)

    async def _take_back(self, context: Context, principal: Principal, tenant_id: str, user_id: str) -> None:
        await self._soft_delete(context, principal, tenant_id, user_id)
        log.warning("new user taken back: its credential was not stored", extra={"user_id": user_id})

    async def _soft_delete(
        self, context: Context, principal: Principal, tenant_id: str, user_id: str
    ) -> UserRecord | None:
        """Soft-delete the user with its ``user.deleted`` event; None when there is no such live user."""
        async with self._db.write() as session:
            record = await self._store.soft_delete(session, tenant_id, user_id)
            if record is None:
                return None
            event = USERS.event(
                "user.deleted",
                tenant_id,
                user_id,
                actor=actor(context, principal.sub),
                entity=user_message(record),
            )
            await self._outbox.add(session, self._topic, event)
        await self._committed_change(tenant_id, user_id)
        return record

    async def _create(
        self,
        context: Context,
        principal: Principal,
        tenant_id: str,
        fields: dict[str, str],
        roles: tuple[str, ...],
    ) -> UserRecord:
        async with self._db.write() as session:
            record = await self._store.create(session, tenant_id=tenant_id, roles=roles, **fields)
            event = USERS.event(
                "user.created",
                tenant_id,
                record.id,
                actor=actor(context, principal.sub),
                entity=user_message(record),
            )
            await self._outbox.add(session, self._topic, event)
        return record

    async def GetUser(self, request: users_pb2.GetUserRequest, context: Context) -> users_pb2.GetUserResponse:
        principal = current_principal()
        tenant_id = await self._tenant(context, principal, request.tenant_id)
        user = await self._cached_user(tenant_id, _requested_id(request))
        if user is None:
            await _not_found(context)
        return users_pb2.GetUserResponse(user=user, status="active" if user.is_active else "inactive")

    async def GetMe(self, request: users_pb2.GetMeRequest, context: Context) -> users_pb2.GetMeResponse:
        principal = current_principal()
        user = await self._cached_user(principal.tenant_id, principal.sub)
        if user is None or not user.is_active:
            if principal.has_role(SERVICE):  # a service has no profile of its own
                await _not_found(context)
            # Read anyway: a caller whose profile is gone or inactive is refused, whatever the marks say.
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, "invalid or expired token")
        return users_pb2.GetMeResponse(user=user)

    async def ListUsers(
        self, request: users_pb2.ListUsersRequest, context: Context
    ) -> users_pb2.ListUsersResponse:
        principal = current_principal()
        tenant_id = await self._tenant(context, principal, request.tenant_id)
        page, size = page_or_default(request.page, request.page_size)
        async with self._db.read() as session:
            records, total = await self._store.list(session, tenant_id, page=page, page_size=size)
        return users_pb2.ListUsersResponse(
            users=[user_message(r) for r in records], total=total, page=page, page_size=size
        )

    async def SearchUsers(
        self, request: users_pb2.SearchUsersRequest, context: Context
    ) -> users_pb2.SearchUsersResponse:
        principal = current_principal()
        tenant_id = await self._tenant(context, principal, request.tenant_id)
        page, size = page_or_default(request.page, request.page_size)
        async with self._db.read() as session:
            records, total = await self._store.search(
                session, tenant_id, request.q.strip(), page=page, page_size=size
            )
        return users_pb2.SearchUsersResponse(
            users=[user_message(r) for r in records], total=total, page=page, page_size=size
        )

    async def UpdateUser(
        self, request: users_pb2.UpdateUserRequest, context: Context
    ) -> users_pb2.UpdateUserResponse:
        principal = current_principal()
        user_id = request.user_id.lower()
        is_admin = principal.has_role(ADMIN)
        if not (is_admin or user_id == principal.sub):
            await _deny(context, "You can only update your own profile")
        changes = _changes(request)
        admin_only = sorted({"email", "roles", "is_active"} & changes.keys())
        if admin_only and not is_admin:
            await _deny(context, f"Only admins can change {', '.join(admin_only)}")
        tenant_id = principal.tenant_id
        if not changes:  # nothing to change: answer the current state, record no event
            current = await self._cached_user(tenant_id, user_id)
            if current is None:
                await _not_found(context)
            return users_pb2.UpdateUserResponse(user=current)
        changed_at = time.time()  # before the event can reach auth (see _end_sessions)
        try:
            async with self._db.write() as session:
                before = await self._store.get(session, tenant_id, user_id, lock=True)
                record = await self._store.update(session, tenant_id, user_id, changes)
                if before is None or record is None:
                    await _not_found(context)
                event = USERS.event(
                    "user.updated",
                    tenant_id,
                    user_id,
                    actor=actor(context, principal.sub),
                    entity=user_message(record),
                )
                await self._outbox.add(session, self._topic, event)
        except DuplicateError as exc:
            await abort(
                context, grpc.StatusCode.ALREADY_EXISTS, f"A user with this {exc.field} already exists"
            )
        await self._committed_change(tenant_id, user_id)
        if ends_sessions(before, record):
            await self._end_sessions(tenant_id, user_id, changed_at)
        return users_pb2.UpdateUserResponse(user=user_message(record))

    async def DeleteUser(
        self, request: users_pb2.DeleteUserRequest, context: Context
    ) -> users_pb2.DeleteUserResponse:
        principal = current_principal()
        user_id = request.user_id.lower()
        # The auth backend (role service) deletes a profile whose registration it could not finish.
        if not (principal.has_role(ADMIN) or principal.has_role(SERVICE) or user_id == principal.sub):
            await _deny(context, "You can only delete your own account")
        tenant_id = principal.tenant_id
        changed_at = time.time()  # before the event can reach auth (see _end_sessions)
        if await self._soft_delete(context, principal, tenant_id, user_id) is None:
            await _not_found(context)
        await self._end_sessions(tenant_id, user_id, changed_at)
        return users_pb2.DeleteUserResponse(message="User deleted successfully")

    async def _end_sessions(self, tenant_id: str, user_id: str, now: float) -> None:
        """The user's tokens up to ``now`` stop at once: in this process's in-process set (cannot fail, and
        refuses their next call here even with Redis away), then in Redis for every other verifier (best
        effort). Neither is the durable record: auth stores its own "valid after" when it consumes the
        event, publishes it to every verifier and holds logins past its second. ``now`` is taken before
        the change commits: a mark taken after it could land, on a busy machine, later than a new login
        that auth already let through, and kill that login's token."""
        self._revocations.add(
            USER, user_id, now + VALID_AFTER_TTL_SECONDS, tenant_id=tenant_id, valid_after=now
        )
        try:
            await end_sessions(self._redis, tenant_id, user_id, at=now)
        except RedisError:
            log.warning("could not end sessions in Redis; auth ends them", extra={"user_id": user_id})


def _get_user_keys(request: users_pb2.GetUserRequest, principal: Principal) -> Sequence[str]:
    """The cache keys GetUser reads first for a request it will serve (none for one it refuses)."""
    # Runs before the request's rules are checked: an id that is no UUID names no key.
    user_id = _requested_id(request)
    if (request.tenant_id and request.tenant_id != principal.tenant_id) or not is_uuid(user_id):
        return ()
    return UserCache.read_keys(principal.tenant_id, user_id)


def _requested_id(request: users_pb2.GetUserRequest) -> str:
    """The id GetUser is asked for: `user_id`, or seed 000's `id` (the rules allow exactly one)."""
    return (request.user_id or request.id).lower()


def _get_me_keys(request: users_pb2.GetMeRequest, principal: Principal) -> Sequence[str]:
    return UserCache.read_keys(principal.tenant_id, principal.sub)


# Read with the token's revocation marks in one round trip (meshkit.auth.prefetch).
PREFETCH: Mapping[str, Prefetch] = {"GetUser": _get_user_keys, "GetMe": _get_me_keys}


def ends_sessions(before: UserRecord, after: UserRecord) -> bool:
    """Whether a change must end the user's sessions: their access tokens carry the roles they had when
    issued, so a demoted admin would stay an admin until expiry; a deactivated user must stop at once.
    Roles are compared as sets (tokens carry them as one): the same roles again log nobody out."""
    return not after.is_active or set(before.roles) != set(after.roles)


# The text fields of a profile, stored normalised; UpdateUser ignores the empty ones.
_PROFILE_FIELDS = ("email", "username", "first_name", "last_name", "phone", "avatar_url")


def _changes(request: users_pb2.UpdateUserRequest) -> dict[str, object]:
    """The fields to change: absent and empty values ignored, as the contract says."""
    changes: dict[str, object] = {
        name: value for name in _PROFILE_FIELDS if (value := normalise(getattr(request, name)))
    }
    if request.roles:
        changes["roles"] = tuple(dict.fromkeys(request.roles))
    if request.HasField("is_active"):
        changes["is_active"] = request.is_active
    return changes
