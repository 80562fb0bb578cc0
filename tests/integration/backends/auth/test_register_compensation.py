"""No half-registered user: when the credential cannot be stored, the new profile is deleted again; when
the caller goes away once the profile exists, the registration still runs to its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
USER_ID = "11111111-2222-3333-4444-555555555555"  # the id RecordingUsers gives


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
                id=USER_ID,
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


class SlowUsers(RecordingUsers):
    """Creates the profile, then holds its answer: the caller's deadline passes meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.created, self.answer = asyncio.Event(), asyncio.Event()

    async def CreateUser(
        self, request: users_pb2.CreateUserRequest, **kwargs: Any
    ) -> users_pb2.CreateUserResponse:
        created = await super().CreateUser(request, **kwargs)
        self.created.set()
        await self.answer.wait()
        return created


class Aborted(Exception):
    pass


class FakeContext:
    def invocation_metadata(self) -> tuple[()]:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    async def abort(self, code: grpc.StatusCode, details: str, *_: Any) -> None:
        raise Aborted(code, details)


def auth_deps(db: Database, users: RecordingUsers, credentials: CredentialStore, keys_dir: Path) -> AuthDeps:
    return AuthDeps(
        settings=AuthSettings(keys_dir=keys_dir),
        db=db,
        credentials=credentials,
        refresh=RefreshTokens(
            idle=timedelta(days=1), absolute=timedelta(days=2), reuse_grace=timedelta(seconds=1)
        ),
        passwords=Passwords(memory_cost=1024, time_cost=1),
        throttle=None,  # type: ignore[arg-type] # not used by Register
        keys=KeyRing.load_or_create(keys_dir, None, datetime.now(UTC)),
        outbox=Outbox(models.outbox),
        revocations=RevocationStore(Outbox(models.outbox), 600),
        redis=None,  # type: ignore[arg-type]
        users=users,  # type: ignore[arg-type]
    )


REQUEST = auth_pb2.RegisterRequest(
    tenant_id="t",
    username="zed",
    email="zed@example.com",
    password="violet-Harbor-81",  # noqa: S106
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    await upgrade(url, MIGRATIONS, "auth_alembic_version")
    database = Database(url)
    yield database
    await database.dispose()


async def test_the_profile_is_removed_when_the_credential_cannot_be_stored(
    db: Database, tmp_path: Path
) -> None:
    users = RecordingUsers()
    deps = auth_deps(db, users, BrokenCredentials(db.dialect), tmp_path / "keys")
    try:
        with pytest.raises(OSError, match="disk full"):
            await AuthService(deps).Register(REQUEST, FakeContext())  # type: ignore[arg-type]
        assert users.deleted == [USER_ID]
    finally:
        deps.passwords.close()


async def test_a_caller_gone_after_the_profile_exists_leaves_a_whole_account(
    db: Database, tmp_path: Path
) -> None:
    # The gateway's deadline passing while users answers: the profile exists, the caller is gone. Cut
    # short there, the profile would hold its name and email and never log in.
    users = SlowUsers()
    deps = auth_deps(db, users, CredentialStore(db.dialect), tmp_path / "keys")
    try:
        call = asyncio.create_task(AuthService(deps).Register(REQUEST, FakeContext()))  # type: ignore[arg-type]
        await asyncio.wait_for(users.created.wait(), 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call  # the caller hears at once
        users.answer.set()
        credential = None
        for _ in range(100):  # the registration ends on its own, the caller long gone
            async with db.read() as session:
                credential = await deps.credentials.get(session, USER_ID)
            if credential is not None:
                break
            await asyncio.sleep(0.05)
        assert credential is not None  # the account is whole: the user logs in
        assert credential.username == "zed"
        assert users.deleted == []
    finally:
        deps.passwords.close()
