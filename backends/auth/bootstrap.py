"""The bootstrap admin: with ``PORTICO_AUTH_ADMIN_PASSWORD`` set, user ``admin`` (role admin, tenant
``default``) exists and logs in with that password. Runs in the background until it succeeds, because
the users backend may start after us."""

from __future__ import annotations

import asyncio
import logging

import grpc

from backends.auth.passwords import check_password
from backends.auth.service import AuthDeps, AuthService
from meshkit.identity import identity_key
from stubs.users.v1 import users_pb2

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@portico.local"
ADMIN_TENANT = "default"


async def _admin_profile(service: AuthService, deps: AuthDeps) -> users_pb2.User:
    metadata = service.service_metadata(ADMIN_TENANT)
    try:
        created = await deps.users.CreateUser(
            users_pb2.CreateUserRequest(
                tenant_id=ADMIN_TENANT, username=ADMIN_USERNAME, email=ADMIN_EMAIL, roles=["admin", "user"]
            ),
            metadata=metadata,
            timeout=5,
        )
        return created.user
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    # The profile exists (an earlier start created it): find it by its username.
    found = await deps.users.SearchUsers(
        users_pb2.SearchUsersRequest(q=ADMIN_USERNAME, page_size=100), metadata=metadata, timeout=5
    )
    for user in found.users:
        if identity_key(user.username) == identity_key(ADMIN_USERNAME):
            return user
    raise LookupError("the admin username is taken but its profile cannot be found")


async def ensure_admin_once(service: AuthService, deps: AuthDeps, password: str) -> None:
    async with deps.db.read() as session:
        credential = await deps.credentials.find_for_login(session, ADMIN_TENANT, ADMIN_USERNAME)
    if credential is not None:
        verdict = await deps.passwords.verify(credential.password_hash, password)
        if not verdict.ok or verdict.needs_rehash:  # the environment is the source of truth
            new_hash = await deps.passwords.hash(password)
            async with deps.db.write() as session:
                await deps.credentials.set_password_hash(session, credential.user_id, new_hash)
            log.info("bootstrap admin password updated from PORTICO_AUTH_ADMIN_PASSWORD")
        return
    password_hash = await deps.passwords.hash(password)
    user = await _admin_profile(service, deps)
    async with deps.db.write() as session:
        await deps.credentials.add(
            session,
            user_id=user.id,
            tenant_id=ADMIN_TENANT,
            username=user.username,
            email=user.email,
            password_hash=password_hash,
            roles=tuple(user.roles),
        )
    log.info("bootstrap admin created", extra={"user_id": user.id})


async def ensure_admin(service: AuthService, deps: AuthDeps, password: str) -> None:
    problems = check_password(password, username=ADMIN_USERNAME, email=ADMIN_EMAIL)
    if problems:
        log.error(
            "PORTICO_AUTH_ADMIN_PASSWORD breaks the password policy; no admin created",
            extra={"problems": [description for _, description in problems]},
        )
        return
    delay = 0.5
    while True:
        try:
            await ensure_admin_once(service, deps, password)
            return
        except (grpc.aio.AioRpcError, LookupError, OSError) as exc:
            log.warning("bootstrap admin not ready yet, retrying", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
