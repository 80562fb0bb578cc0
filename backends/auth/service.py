"""gRPC handlers of ``auth.v1.AuthService``: register, log in, refresh, log out, publish the keys.

Credentials and refresh tokens only — profiles stay in the users backend, reached over gRPC with a
short-lived ``service`` token. Auth's copy of a profile (roles, active) follows the users backend's
events, so a login or a refresh asks the users backend itself before issuing a token: a user deleted,
deactivated or demoted a moment ago gets no token (or none with the old roles), and when the users
backend cannot answer, neither does auth (UNAVAILABLE). Every failed login answers the same message
after the same amount of work (an unknown user or a locked account still costs one password
verification). Audit events go through
the outbox in the same transaction as the change they describe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, cast

import grpc

from backends.auth.access_tokens import IssuedToken, ServiceTokens, issue_access_token
from backends.auth.audit import audit_event
from backends.auth.config import AuthSettings
from backends.auth.events import AUTH
from backends.auth.keys import KeyRing
from backends.auth.lockout import Account, LoginThrottle
from backends.auth.metrics import AuthMetrics, LoginOutcome
from backends.auth.passwords import Passwords, check_password
from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.revocations import Mark, RevocationStore, copy_to_redis, end_user_sessions_now
from backends.auth.store import Credential, CredentialStore, DuplicateCredential, Issued
from meshkit.auth.interceptor import current_principal
from meshkit.auth.revocation_set import RevocationSet
from meshkit.db.database import Database
from meshkit.events.outbox import Outbox
from meshkit.finishing import Finishing
from meshkit.identity import DEFAULT_TENANT, LoginAccount, login_account
from meshkit.redis_client import RedisClient
from meshkit.rpc.context import Context, actor, client_ip
from meshkit.rpc.forwarding import onward_metadata
from meshkit.rpc.status import INVALID_REQUEST, FieldViolation, abort
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc
from stubs.events.v1 import events_pb2
from stubs.users.v1 import users_pb2

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from stubs.users.v1.users_pb2_grpc import UserServiceAsyncStub

log = logging.getLogger(__name__)

TOKEN_TYPE = "bearer"  # noqa: S105 (the OAuth token_type value, not a secret)
LOGIN_FAILED = "Invalid username or password"
REFRESH_FAILED = "Invalid token, Please login again"
PASSWORD_FAILED = "Invalid password"  # noqa: S105 (a message, not a secret)
ADMIN, SERVICE = "admin", "service"
LOGOUT_PUBLISH_WAIT = 5.0  # seconds a logout waits for its revocation on the stream while Redis is away
# Seconds a login or refresh waits for the users backend to confirm the user: one cached read there, so
# short; well inside the gateway's deadline, which also covers the password's verification.
PROFILE_CHECK_TIMEOUT = 2.0
# Statuses of the users backend passed on as they are: they describe the caller's input.
_PASS_THROUGH = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}


def _now() -> datetime:
    return datetime.now(UTC)


def _granted_roles(fresh: Sequence[str], held: Sequence[str]) -> tuple[str, ...]:
    """The roles a new token carries: those the users backend answered (``fresh``, asked before the
    credential's lock) that auth's copy (``held``, read under that lock) has too.

    A change of roles committed between the two is either consumed already (the copy has it, and a
    demotion shows here although the answer predates it) or waits for the lock, and its "valid after"
    mark then ends this token. Neither source can add a role the other has withdrawn; a promotion shows
    once both have it (the next login or refresh after auth consumed it)."""
    kept = set(held)
    return tuple(role for role in fresh if role in kept)


def _login_request(request: auth_pb2.LoginRequest) -> LoginAccount | list[FieldViolation]:
    """The account a login request names, or what is wrong with the request.

    Names longer than any account's and passwords longer than any the policy accepts were refused by
    the request's rules (auth.proto), before being normalised, looked up, made a Redis key or hashed."""
    # The account as the gateway's login limit keys it: one function decides for both.
    named = login_account(request.tenant_id, request.username, request.email)
    if not named.name or not request.password:
        return [("username", "username or email is required"), ("password", "is required")]
    return named


@dataclass(frozen=True)
class AuthDeps:
    """Everything :class:`AuthService` works with, built once by the backend's entry point."""

    settings: AuthSettings
    db: Database
    credentials: CredentialStore
    refresh: RefreshTokens
    passwords: Passwords
    throttle: LoginThrottle
    keys: KeyRing
    outbox: Outbox
    redis: RedisClient
    users: UserServiceAsyncStub
    revocations: RevocationStore
    # This process's copy of the revocation stream: a logout Redis missed answers once it is there.
    published: RevocationSet | None = None
    metrics: AuthMetrics = field(default_factory=AuthMetrics)


class AuthService(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, deps: AuthDeps) -> None:
        self._d = deps
        self._s = deps.settings
        self._service_tokens = ServiceTokens(issuer=self._s.jwt_issuer, audience=self._s.jwt_audience)
        self._finishing = Finishing("registration")

    # -- tokens ------------------------------------------------------------------------------------

    def _access_token(
        self, *, sub: str, tenant_id: str, email: str, roles: tuple[str, ...], sid: str
    ) -> IssuedToken:
        now = _now()
        self._d.keys.reload_if_changed()
        return issue_access_token(
            self._d.keys.signing_key(now),
            sub=sub,
            tenant_id=tenant_id,
            email=email,
            roles=roles,
            session_id=sid,
            ttl_seconds=self._s.access_token_ttl,
            issuer=self._s.jwt_issuer,
            audience=self._s.jwt_audience,
            now=now,
        )

    def service_metadata(self, tenant_id: str) -> tuple[tuple[str, str], ...]:
        """Credentials for one call to the users backend: a service token with at least 30 s left."""
        now = _now()
        self._d.keys.reload_if_changed()
        token = self._service_tokens.token(self._d.keys.signing_key(now), tenant_id, now)
        return (("authorization", f"Bearer {token}"),)

    def _users_metadata(self, context: Context, tenant_id: str) -> tuple[tuple[str, str], ...]:
        return (
            *self.service_metadata(tenant_id),
            # Forwarded so the users backend's events name the end client, not this backend.
            *onward_metadata(context, self._s.forwarding_secret),
        )

    async def _current_profile(self, context: Context, tenant_id: str, user_id: str) -> users_pb2.User | None:
        """The user as the users backend has it now, None once deleted; UNAVAILABLE when it cannot say.

        The users backend is the source of truth: auth's copy (roles, active, disabled) follows its
        events and lags them, so a user deleted or demoted a moment ago still looks unchanged here.
        Its GetUser reads through a cache that is invalidated when a change commits."""
        try:
            found = await self._d.users.GetUser(
                users_pb2.GetUserRequest(tenant_id=tenant_id, user_id=user_id),
                metadata=self._users_metadata(context, tenant_id),
                timeout=PROFILE_CHECK_TIMEOUT,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            # "Cannot check" is neither a yes nor a no: never a token, never the 401 of a wrong password.
            log.error("could not check the user with the users backend", extra={"code": exc.code().name})
            await abort(context, grpc.StatusCode.UNAVAILABLE, "The user service is unavailable")
        user: users_pb2.User = found.user
        return user

    async def _users_call(self, context: Context, method: Any, request: Any, tenant_id: str) -> Any:
        metadata = self._users_metadata(context, tenant_id)
        try:
            return await method(request, metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _PASS_THROUGH:
                # Pass the status on with its details (the BadRequest field violations travel in trailers).
                trailers = tuple(cast(Any, exc.trailing_metadata()) or ())
                await abort(context, exc.code(), exc.details() or "", trailers=trailers)
            log.error("users backend call failed", extra={"code": exc.code().name})
            await abort(context, grpc.StatusCode.UNAVAILABLE, "The user service is unavailable")

    async def _audit(self, event: events_pb2.Event) -> None:
        async with self._d.db.write() as session:
            await self._d.outbox.add(session, AUTH.topic, event)

    # -- RPCs --------------------------------------------------------------------------------------

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: Context
    ) -> auth_pb2.RegisterResponse:
        tenant_id = request.tenant_id or DEFAULT_TENANT
        # The request's rules (auth.proto) passed; the policy adds what needs the names and the common list.
        if problems := check_password(request.password, username=request.username, email=request.email):
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, INVALID_REQUEST, violations=problems)
        password_hash = await self._d.passwords.hash(request.password)
        # From the profile's creation on, the registration runs to its end even if the caller goes away
        # (its deadline passing in a queue of logins, say): cut short there, it would leave a profile that
        # can never log in and holds its name and email. Done, the user simply logs in.
        user, family = await self._finishing.run(
            self._create_account(context, request, tenant_id, password_hash)
        )
        access = self._access_token(
            sub=user.id, tenant_id=tenant_id, email=user.email, roles=tuple(user.roles), sid=family.family_id
        )
        return auth_pb2.RegisterResponse(
            user=user,
            access_token=access.token,
            refresh_token=family.token,
            token_type=TOKEN_TYPE,
            expires_in=self._s.access_token_ttl,
        )

    async def _create_account(
        self, context: Context, request: auth_pb2.RegisterRequest, tenant_id: str, password_hash: str
    ) -> tuple[users_pb2.User, Issued]:
        """The profile in users, then its credential here; the profile taken back if the credential fails."""
        created = await self._users_call(
            context,
            self._d.users.CreateUser,
            users_pb2.CreateUserRequest(
                tenant_id=tenant_id,
                username=request.username,
                email=request.email,
                first_name=request.first_name,
                last_name=request.last_name,
                phone=request.phone,
            ),
            tenant_id,
        )
        user: users_pb2.User = created.user
        try:
            async with self._d.db.write() as session:
                await self._d.credentials.add(
                    session,
                    user_id=user.id,
                    tenant_id=tenant_id,
                    username=user.username,
                    email=user.email,
                    password_hash=password_hash,
                    roles=tuple(user.roles),
                )
                family = await self._d.refresh.start_family(
                    session, user_id=user.id, tenant_id=tenant_id, now=_now()
                )
                await self._d.outbox.add(
                    session,
                    AUTH.topic,
                    audit_event(
                        "login.succeeded",
                        tenant_id,
                        actor=actor(context, user.id),
                        user_id=user.id,
                        identifier=user.username,
                        session_id=family.family_id,
                        reason="registered",
                    ),
                )
        except BaseException as exc:
            # No half-registered user: take the profile back before answering.
            await self._compensate(context, user, tenant_id)
            if isinstance(exc, DuplicateCredential):
                await abort(
                    context, grpc.StatusCode.ALREADY_EXISTS, f"A user with this {exc.field} already exists"
                )
            raise
        return user, family

    async def _compensate(self, context: Context, user: users_pb2.User, tenant_id: str) -> None:
        try:
            await self._d.users.DeleteUser(
                users_pb2.DeleteUserRequest(user_id=user.id),
                metadata=self.service_metadata(tenant_id),
                timeout=5,
            )
        except grpc.aio.AioRpcError as exc:
            # The profile stays without credentials: it cannot log in; logged for an operator.
            log.error(
                "could not remove a half-registered profile",
                extra={"user_id": user.id, "code": exc.code().name},
            )

    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> auth_pb2.LoginResponse:
        named = _login_request(request)
        if isinstance(named, list):
            self._d.metrics.login(LoginOutcome.INVALID_REQUEST)
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, INVALID_REQUEST, violations=named)
        tenant_id, identifier = named.tenant_id, named.given
        ip = client_ip(context)
        d = self._d

        async def refuse(reason: str, account: Account, user_id: str = "", *, count: bool = True) -> NoReturn:
            # unknown_user and wrong_password are one outcome, as they are one answer
            d.metrics.login(LoginOutcome.LOCKED if reason == "locked" else LoginOutcome.INVALID_CREDENTIALS)
            if count:  # a refused (locked) attempt is not a new failure: it would extend the lockout forever
                await d.throttle.failed(tenant_id, account, ip)
            await self._audit(
                audit_event(
                    "login.failed",
                    tenant_id,
                    actor=actor(context),
                    user_id=user_id,
                    identifier=identifier,
                    reason=reason,
                )
            )
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, LOGIN_FAILED)

        async with d.db.read() as session:
            credential = await d.credentials.find_for_login(session, tenant_id, named.name)
        # One failure budget per account, whether it is named by username or by email.
        account = Account(user_id=credential.user_id) if credential is not None else Account(name=named.name)
        if not await d.throttle.check(tenant_id, account, ip):
            await d.passwords.burn(request.password)  # a locked account costs what a wrong password costs
            await refuse("locked", account, credential.user_id if credential else "", count=False)
        if credential is None:
            await d.passwords.burn(request.password)
            await refuse("unknown_user", account)
        assert credential is not None
        verdict = await d.passwords.verify(credential.password_hash, request.password)
        if not verdict.ok:
            await refuse("wrong_password", account, credential.user_id)
        if not credential.active:
            # The same answer as any failure; the right password of a deactivated account is no attack.
            await refuse("user_inactive", account, credential.user_id, count=False)
        # Asked after the password (an unknown name or a wrong password costs the users backend
        # nothing) and before the credential's lock (a lock is not held across a network call; see
        # _granted_roles for why the answer still fits what is read under the lock).
        profile = await self._current_profile(context, tenant_id, credential.user_id)
        if profile is None:
            # Deleted, its event not consumed yet. Not counted: the right password is no guess, and
            # counting it would spend the client IP's budget shared with other users.
            await refuse("user_deleted", account, credential.user_id, count=False)
        if not profile.is_active:
            await refuse("user_inactive", account, credential.user_id, count=False)
        await d.throttle.succeeded(tenant_id, account)
        new_hash = await d.passwords.hash(request.password) if verdict.needs_rehash else None
        started = await self._start_login(context, credential, identifier, new_hash, profile.roles)
        if started is None:  # deleted, deactivated or given a new password since it was checked
            await refuse("user_inactive", account, credential.user_id, count=False)
        family, access, change_required = started
        d.metrics.login(LoginOutcome.SUCCEEDED)
        return auth_pb2.LoginResponse(
            access_token=access.token,
            refresh_token=family.token,
            token_type=TOKEN_TYPE,
            expires_in=self._s.access_token_ttl,
            password_change_required=change_required,
            token=access.token,
            status="authenticated",
        )

    async def _start_login(
        self,
        context: Context,
        checked: Credential,
        identifier: str,
        new_hash: str | None,
        fresh_roles: Sequence[str],
    ) -> tuple[Issued, IssuedToken, bool] | None:
        """The login's refresh-token family and access token, and whether the password must be changed;
        None when the user may not log in now.

        The credential is read again, locked, and the token issued before the commit: a change of roles
        or a deactivation consumed meanwhile either waits for this login, and its "valid after" mark
        then ends this token, or came first, and the token carries what it changed. A password changed
        or reset since ``checked`` was verified refuses the login: the old password opens nothing."""
        d = self._d
        user_id, tenant_id = checked.user_id, checked.tenant_id
        async with d.db.write() as session:
            current = await d.credentials.get(session, user_id, lock="update")
            if (
                current is None
                or current.disabled
                or not current.active
                or current.password_hash != checked.password_hash
            ):
                return None
            roles = _granted_roles(fresh_roles, current.roles)
            await self._withdraw_in_flight(session, tenant_id, user_id, current.roles, roles)
            if new_hash is not None:
                await d.credentials.set_password_hash(session, user_id, new_hash)
            family = await d.refresh.start_family(session, user_id=user_id, tenant_id=tenant_id, now=_now())
            await d.outbox.add(
                session,
                AUTH.topic,
                audit_event(
                    "login.succeeded",
                    tenant_id,
                    actor=actor(context, user_id),
                    user_id=user_id,
                    identifier=identifier,
                    session_id=family.family_id,
                ),
            )
            access = self._access_token(
                sub=user_id,
                tenant_id=tenant_id,
                email=current.email,
                roles=roles,
                sid=family.family_id,
            )
        return family, access, current.password_change_required

    async def _withdraw_in_flight(
        self,
        session: AsyncSession,
        tenant_id: str,
        user_id: str,
        held: Sequence[str],
        granted: Sequence[str],
    ) -> None:
        """Apply, under the credential's lock, a withdrawal of roles the users backend has committed and
        whose event auth has not consumed yet: otherwise the mark that event's consumption makes would
        end the token issued now, with the new roles, a moment later. Done as the consumer does it (the
        copy, a "valid after" mark, the clock past its second), the event then changes nothing.

        A role granted in flight is not applied early: the token goes without it until the event comes
        (see :func:`_granted_roles`)."""
        if set(held) <= set(granted):
            return
        d = self._d
        await d.credentials.update_profile(session, user_id, roles=granted)
        await end_user_sessions_now(d.revocations, d.redis, session, tenant_id, user_id)
        log.info("withdrawn roles applied before their event", extra={"user_id": user_id})

    async def Refresh(self, request: auth_pb2.RefreshRequest, context: Context) -> auth_pb2.RefreshResponse:
        presented = request.refresh_token or request.old_refresh_token  # old_refresh_token: its earlier name
        if not presented or len(presented) > 512:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, REFRESH_FAILED)
        d = self._d
        # The owner is checked with the users backend before the transaction that rotates and locks
        # (as in Login); a failed check rotates nothing, so the client keeps a token it can retry with.
        async with d.db.read() as session:
            owner = await d.refresh.owner(session, presented, _now())
        if owner is None:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, REFRESH_FAILED)
        profile = await self._current_profile(context, owner[1], owner[0])
        ended: list[Mark] = []
        access: IssuedToken | None = None
        async with d.db.write() as session:
            result = await d.refresh.rotate(session, presented, _now())
            outcome = result.outcome
            # The ids are set whenever the presented token was found (rotated, race, reuse).
            user_id, tenant_id, family_id = (
                result.user_id or "",
                result.tenant_id or "",
                result.family_id or "",
            )
            # Locked, and the token issued before the commit, as in Login: a refresh that read the roles
            # a change is replacing issued a token older than that change's "valid after" mark; the
            # roles are those the users backend's answer and this copy agree on (_granted_roles). The
            # family itself lives on after a change of roles: the next refresh issues the new roles.
            credential = (
                await d.credentials.get(session, user_id, lock="update") if outcome == "rotated" else None
            )
            if outcome == "rotated" and (credential is None or credential.disabled or not credential.active):
                await d.refresh.revoke_family(session, family_id, "user_disabled", _now())
                outcome = "invalid"
            if outcome in ("rotated", "race") and (profile is None or not profile.is_active):
                # Deleted or deactivated in the users backend, its event still on the way: the family
                # ends now (the event would end it too), the rotation with it.
                reason = "user_deleted" if profile is None else "user_disabled"
                await d.refresh.revoke_family(session, family_id, reason, _now())
                outcome = "invalid"
            if outcome == "reuse":
                # The family is revoked in the database; its access tokens die everywhere at once too.
                ended.append(await d.revocations.end_session(session, tenant_id, family_id))
                await d.outbox.add(
                    session,
                    AUTH.topic,
                    audit_event(
                        "token.reuse_detected",
                        tenant_id,
                        actor=actor(context),
                        user_id=user_id,
                        session_id=family_id,
                        reason="refresh_token_reused",
                    ),
                )
            elif outcome == "rotated" and credential is not None and profile is not None:
                roles = _granted_roles(profile.roles, credential.roles)
                await self._withdraw_in_flight(session, tenant_id, user_id, credential.roles, roles)
                await d.outbox.add(
                    session,
                    AUTH.topic,
                    audit_event(
                        "token.refreshed",
                        tenant_id,
                        actor=actor(context, user_id),
                        user_id=user_id,
                        session_id=family_id,
                    ),
                )
                access = self._access_token(
                    sub=credential.user_id,
                    tenant_id=credential.tenant_id,
                    email=credential.email,
                    roles=roles,
                    sid=family_id,
                )
        if outcome == "reuse":
            d.metrics.refresh_reuse.inc()
            await copy_to_redis(d.redis, ended)
        if outcome != "rotated" or access is None or result.token is None:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, REFRESH_FAILED)
        return auth_pb2.RefreshResponse(
            access_token=access.token,
            refresh_token=result.token,
            token_type=TOKEN_TYPE,
            expires_in=self._s.access_token_ttl,
            password_change_required=credential is not None and credential.password_change_required,
        )

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Context) -> auth_pb2.LogoutResponse:
        principal = current_principal()
        d = self._d
        families: set[str] = set()
        # Committed with the logout (the source of truth, published to every verifier); Redis follows.
        async with d.db.write() as session:
            marks = [
                await d.revocations.revoke_token(
                    session, principal.tenant_id, principal.jti, principal.expires_at + self._s.jwt_leeway
                )
            ]
            if principal.session_id:
                await d.refresh.revoke_family(session, principal.session_id, "logout", _now())
                families.add(principal.session_id)
            if request.refresh_token:
                family_id = await d.refresh.revoke_family_of(
                    session, request.refresh_token, "logout", _now(), user_id=principal.sub
                )
                if family_id:
                    families.add(family_id)
            for family_id in sorted(families):
                marks.append(await d.revocations.end_session(session, principal.tenant_id, family_id))
            await d.outbox.add(
                session,
                AUTH.topic,
                audit_event(
                    "logout",
                    principal.tenant_id,
                    actor=actor(context, principal.sub),
                    user_id=principal.sub,
                    session_id=principal.session_id,
                ),
            )
        in_redis = await copy_to_redis(d.redis, marks)
        # Redis missed it: answer once the revocation stream has it (every verifier reads it at the same
        # time), so "logged out" is true when said. It is stored either way and takes effect when Kafka
        # delivers it; until then the client is told to retry.
        if (
            not in_redis
            and d.published is not None
            and not await d.published.wait_for_jti(principal.jti, LOGOUT_PUBLISH_WAIT)
        ):
            await abort(context, grpc.StatusCode.UNAVAILABLE, "Logout is not effective yet, please retry")
        return auth_pb2.LogoutResponse(status="logout successful")

    # -- passwords -----------------------------------------------------------------------------------

    async def _new_password_hash(
        self, context: Context, password: str, profile: users_pb2.User | Credential, field: str
    ) -> str:
        """The argon2id hash of a new password that passes the policy, else INVALID_ARGUMENT on ``field``."""
        if problems := check_password(password, username=profile.username, email=profile.email):
            violations = [(field, message) for _, message in problems]
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, INVALID_REQUEST, violations=violations)
        return await self._d.passwords.hash(password)

    async def _admin_tenant(self, context: Context, requested: str = "") -> str:
        """The tenant of an admin (or service) caller, who may set passwords in it alone."""
        principal = current_principal()
        if not (principal.has_role(ADMIN) or principal.has_role(SERVICE)):
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, "Only admins can set passwords")
        if requested and requested != principal.tenant_id:
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, "The tenant does not match the token")
        return principal.tenant_id

    async def _active_profile(self, context: Context, tenant_id: str, user_id: str) -> users_pb2.User:
        profile = await self._current_profile(context, tenant_id, user_id)
        if profile is None or not profile.is_active:
            await abort(context, grpc.StatusCode.NOT_FOUND, "User not found")
        return profile

    async def _add_credential(
        self, context: Context, session: AsyncSession, profile: users_pb2.User, password_hash: str
    ) -> None:
        """Store the first credential of ``profile`` (names and roles as the users backend has them)."""
        try:
            await self._d.credentials.add(
                session,
                user_id=profile.id,
                tenant_id=profile.tenant_id,
                username=profile.username,
                email=profile.email,
                password_hash=password_hash,
                roles=tuple(profile.roles),
            )
        except DuplicateCredential as exc:
            await abort(
                context, grpc.StatusCode.ALREADY_EXISTS, f"A user with this {exc.field} already exists"
            )

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: Context
    ) -> auth_pb2.ChangePasswordResponse:
        principal = current_principal()
        tenant_id, user_id, ip = principal.tenant_id, principal.sub, client_ip(context)
        d = self._d
        account = Account(user_id=user_id)  # the budget a login of this account spends too
        async with d.db.read() as session:
            credential = await d.credentials.get(session, user_id)

        async def refuse(reason: str, *, count: bool = True) -> NoReturn:
            if count:
                await d.throttle.failed(tenant_id, account, ip)
            await self._audit(
                audit_event(
                    "password.change_failed",
                    tenant_id,
                    actor=actor(context, user_id),
                    user_id=user_id,
                    session_id=principal.session_id,
                    reason=reason,
                )
            )
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, PASSWORD_FAILED)

        if not await d.throttle.check(tenant_id, account, ip):
            await d.passwords.burn(request.old_password)
            await refuse("locked", count=False)
        if credential is None or credential.disabled or credential.tenant_id != tenant_id:
            await d.passwords.burn(request.old_password)  # a service token or a deleted user: no password
            await refuse("unknown_user", count=False)
        if not (await d.passwords.verify(credential.password_hash, request.old_password)).ok:
            await refuse("wrong_password")
        if request.new_password == request.old_password:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                INVALID_REQUEST,
                violations=[("new_password", "must differ from the current password")],
            )
        new_hash = await self._new_password_hash(context, request.new_password, credential, "new_password")
        await d.throttle.succeeded(tenant_id, account)
        marks: list[Mark] = []
        async with d.db.write() as session:
            current = await d.credentials.get(session, user_id, lock="update")
            # Changed or reset meanwhile: the old password that was checked is no longer the current one.
            changed = current is None or current.password_hash != credential.password_hash
            if not changed:
                await d.credentials.set_password_hash(session, user_id, new_hash, change_required=False)
                # Every other login ends, its refresh tokens and (by its sid) its access tokens; the
                # caller's own login goes on.
                others = await d.refresh.revoke_others(
                    session, user_id, principal.session_id or None, "password_changed", _now()
                )
                marks = [await d.revocations.end_session(session, tenant_id, family) for family in others]
                await d.outbox.add(
                    session,
                    AUTH.topic,
                    audit_event(
                        "password.changed",
                        tenant_id,
                        actor=actor(context, user_id),
                        user_id=user_id,
                        session_id=principal.session_id,
                    ),
                )
        if changed:
            await refuse("password_changed_meanwhile", count=False)
        await copy_to_redis(d.redis, marks)
        return auth_pb2.ChangePasswordResponse(status="password changed")

    async def ResetPassword(
        self, request: auth_pb2.ResetPasswordRequest, context: Context
    ) -> auth_pb2.ResetPasswordResponse:
        tenant_id = await self._admin_tenant(context)
        user_id = request.user_id.lower()
        # The users backend says whether the user exists in this tenant (auth's copy lags its events).
        profile = await self._active_profile(context, tenant_id, user_id)
        new_hash = await self._new_password_hash(context, request.new_password, profile, "new_password")
        d = self._d
        async with d.db.write() as session:
            current = await d.credentials.get(session, user_id, lock="update")
            if current is not None and (current.disabled or current.tenant_id != tenant_id):
                await abort(context, grpc.StatusCode.NOT_FOUND, "User not found")
            if current is None:  # created without a password: the reset gives the user one
                await self._add_credential(context, session, profile, new_hash)
            await d.credentials.set_password_hash(session, user_id, new_hash, change_required=True)
            # Families before the mark, as a deletion does; the mark ends every access token up to now.
            await d.refresh.revoke_user(session, user_id, "password_reset", _now())
            await end_user_sessions_now(d.revocations, d.redis, session, tenant_id, user_id)
            await d.outbox.add(
                session,
                AUTH.topic,
                audit_event(
                    "password.reset",
                    tenant_id,
                    actor=actor(context, current_principal().sub),
                    user_id=user_id,
                ),
            )
        return auth_pb2.ResetPasswordResponse(status="password reset")

    async def CreateCredential(
        self, request: auth_pb2.CreateCredentialRequest, context: Context
    ) -> auth_pb2.CreateCredentialResponse:
        tenant_id = await self._admin_tenant(context, request.tenant_id)
        user_id = request.user_id.lower()
        # Names and roles come from the users backend, never from the request.
        profile = await self._active_profile(context, tenant_id, user_id)
        password_hash = await self._new_password_hash(context, request.password, profile, "password")
        async with self._d.db.write() as session:
            await self._add_credential(context, session, profile, password_hash)
            await self._d.outbox.add(
                session,
                AUTH.topic,
                audit_event(
                    "credential.created",
                    tenant_id,
                    actor=actor(context, current_principal().sub),
                    user_id=user_id,
                ),
            )
        return auth_pb2.CreateCredentialResponse()

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Context) -> auth_pb2.GetJwksResponse:
        self._d.keys.reload_if_changed()
        return self._d.keys.jwks(_now())
