"""No half-registered user: when the credential cannot be stored, the new profile is deleted again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from backends.auth import models
from backends.auth.config import AuthSettings
from backends.auth.keys import KeyRing
from backends.auth.passwords import Passwords
from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.revocations import RevocationStore
from backends.auth.service import AuthDeps, AuthService
from backends.auth.store import CredentialStore
from infra.paths import REPO_ROOT
from meshkit.db.database import Database
from meshkit.db.migrations import upgrade
from meshkit.events.outbox import Outbox
from stubs.auth.v1 import auth_pb2
from stubs.users.v1 import users_pb2

MIGRATIONS = REPO_ROOT / "backends" / "auth" / "migrations"


class BrokenCredentials(CredentialStore):
    async def add(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")


class RecordingUsers:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def CreateUser(
        self, request: users_pb2.CreateUserRequest, **_: Any
    ) -> users_pb2.CreateUserResponse:
        return users_pb2.CreateUserResponse(
            user=users_pb2.User(
                id="11111111-2222-3333-4444-555555555555",
                tenant_id=request.tenant_id,
                username=request.username,
                email=request.email,
                roles=["user"],
            )
        )

    async def DeleteUser(
        self, request: users_pb2.DeleteUserRequest, **_: Any
    ) -> users_pb2.DeleteUserResponse:
        self.deleted.append(request.user_id)
        return users_pb2.DeleteUserResponse(message="User deleted successfully")


class Aborted(Exception):
    pass


class FakeContext:
    def invocation_metadata(self) -> tuple[()]:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    async def abort(self, code: grpc.StatusCode, details: str, *_: Any) -> None:
        raise Aborted(code, details)


async def test_the_profile_is_removed_when_the_credential_cannot_be_stored(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    await upgrade(url, MIGRATIONS, "auth_alembic_version")
    db = Database(url)
    users = RecordingUsers()
    now = datetime.now(UTC)
    deps = AuthDeps(
        settings=AuthSettings(keys_dir=tmp_path / "keys"),
        db=db,
        credentials=BrokenCredentials(db.dialect),
        refresh=RefreshTokens(
            idle=timedelta(days=1), absolute=timedelta(days=2), reuse_grace=timedelta(seconds=1)
        ),
        passwords=Passwords(memory_cost=1024, time_cost=1),
        throttle=None,  # type: ignore[arg-type]  (not used by Register)
        keys=KeyRing.load_or_create(tmp_path / "keys", None, now),
        outbox=Outbox(models.outbox),
        revocations=RevocationStore(Outbox(models.outbox), 600),
        redis=None,  # type: ignore[arg-type]
        users=users,  # type: ignore[arg-type]
    )
    request = auth_pb2.RegisterRequest(
        tenant_id="t",
        username="zed",
        email="zed@example.com",
        password="violet-Harbor-81",  # noqa: S106
    )
    try:
        with pytest.raises(OSError, match="disk full"):
            await AuthService(deps).Register(request, FakeContext())  # type: ignore[arg-type]
        assert users.deleted == ["11111111-2222-3333-4444-555555555555"]
    finally:
        deps.passwords.close()
        await db.dispose()
