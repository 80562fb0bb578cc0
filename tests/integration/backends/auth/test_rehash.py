"""Rehash on login: a password stored under older argon2 parameters is re-hashed with the current ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from backends.auth import models
from backends.auth.config import AuthSettings
from backends.auth.keys import KeyRing
from backends.auth.lockout import LoginThrottle
from backends.auth.passwords import Passwords
from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.revocations import RevocationStore
from backends.auth.service import AuthDeps, AuthService
from backends.auth.store import CredentialStore
from harness.infra import InfraEnv
from infra.paths import REPO_ROOT
from meshkit.db.database import Database
from meshkit.db.migrations import upgrade
from meshkit.events.outbox import Outbox
from stubs.auth.v1 import auth_pb2
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra
MIGRATIONS = REPO_ROOT / "backends" / "auth" / "migrations"
PASSWORD = "saffron-Meadow-62"  # noqa: S105 (a test password)


class FakeContext:
    def invocation_metadata(self) -> tuple[()]:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    async def abort(self, code: Any, details: str, *_: Any) -> None:
        raise AssertionError(f"aborted: {code} {details}")


class FakeUsers:
    """The users backend as a login asks it: the user exists and is active."""

    async def GetUser(self, request: users_pb2.GetUserRequest, **_: Any) -> users_pb2.GetUserResponse:
        user = users_pb2.User(id=request.user_id, tenant_id=request.tenant_id, roles=["user"], is_active=True)
        return users_pb2.GetUserResponse(user=user)


async def test_login_upgrades_a_hash_made_with_older_parameters(tmp_path: Path, infra: InfraEnv) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    await upgrade(url, MIGRATIONS, "auth_alembic_version")
    db = Database(url)
    redis = Redis.from_url(infra.redis_url)
    old, current = Passwords(memory_cost=1024, time_cost=1), Passwords()
    credentials = CredentialStore(db.dialect)
    async with db.write() as session:
        await credentials.add(
            session,
            user_id="u-1",
            tenant_id="t-rehash",
            username="rhea",
            email="rhea@example.com",
            password_hash=await old.hash(PASSWORD),
            roles=("user",),
        )
    deps = AuthDeps(
        settings=AuthSettings(keys_dir=tmp_path / "keys"),
        db=db,
        credentials=credentials,
        refresh=RefreshTokens(
            idle=timedelta(days=1), absolute=timedelta(days=2), reuse_grace=timedelta(seconds=1)
        ),
        passwords=current,
        throttle=LoginThrottle(redis),
        keys=KeyRing.load_or_create(tmp_path / "keys", None, datetime.now(UTC)),
        outbox=Outbox(models.outbox),
        revocations=RevocationStore(Outbox(models.outbox), 600),
        redis=redis,
        users=FakeUsers(),  # type: ignore[arg-type]
    )
    try:
        reply = await AuthService(deps).Login(
            auth_pb2.LoginRequest(tenant_id="t-rehash", username="rhea", password=PASSWORD),
            FakeContext(),  # type: ignore[arg-type]
        )
        assert reply.access_token
        async with db.read() as session:
            stored = await credentials.get(session, "u-1")
        assert stored is not None
        assert "m=19456,t=2,p=1" in stored.password_hash
        assert (await current.verify(stored.password_hash, PASSWORD)).needs_rehash is False
    finally:
        old.close()
        current.close()
        await redis.aclose()
        await db.dispose()
