"""The users backend process on PostgreSQL (the store is tested on both; this runs the service on it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from harness.infra import InfraEnv
from harness.tokens import TokenIssuer
from harness.users import UsersBackend, users_backend_fixture
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def pg_backend(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UsersBackend]:
    yield from users_backend_fixture(
        infra, issuer, Path(tmp_path_factory.mktemp("users-pg")), infra.database_url
    )


def test_create_search_update_delete_on_postgres(pg_backend: UsersBackend) -> None:
    assert pg_backend.database_url.startswith("postgresql")
    tenant = f"pg-{uuid.uuid4().hex[:10]}"
    _, admin_token = pg_backend.admin(tenant)
    john = pg_backend.create_user(
        admin_token, email="john@example.com", first_name="John", last_name="Running"
    )
    meta = pg_backend.metadata(admin_token)
    channel, stub = pg_backend.stub()
    with channel:
        found = stub.SearchUsers(users_pb2.SearchUsersRequest(q="run"), metadata=meta, timeout=10)
        assert [u.id for u in found.users] == [john["id"]]
        updated = stub.UpdateUser(
            users_pb2.UpdateUserRequest(user_id=john["id"], email="J@Example.com"), metadata=meta, timeout=10
        )
        assert updated.user.email == "J@Example.com"
        stub.DeleteUser(users_pb2.DeleteUserRequest(user_id=john["id"]), metadata=meta, timeout=10)
        with pytest.raises(grpc.RpcError) as gone:
            stub.GetUser(users_pb2.GetUserRequest(user_id=john["id"]), metadata=meta, timeout=10)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    again = pg_backend.create_user(admin_token, email="j@example.com", username=john["username"])
    assert again["id"] != john["id"]
