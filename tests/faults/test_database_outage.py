"""The users backend's PostgreSQL SIGKILLed: calls that need the database answer UNAVAILABLE ("try
again"), never INTERNAL and never a stack trace; nothing half-written is left; once PostgreSQL is back
the same calls succeed.

Its own PostgreSQL and users backend, against the session's Kafka and Redis, which it does not touch."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from harness.infra import InfraEnv
from harness.kafka_faults import report
from harness.processes import wait_until
from harness.tokens import TokenIssuer
from harness.users import start_users_backend
from infra.local import LocalPostgres, free_port
from meshkit.rpc.interceptors.internal_errors import UNAVAILABLE_MESSAGE
from stubs.users.v1 import users_pb2, users_pb2_grpc

pytestmark = pytest.mark.infra
TIMEOUT = 15.0


def test_a_killed_database_answers_unavailable_and_recovers(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    # Durable: what was acknowledged before the SIGKILL must be there after it.
    postgres = LocalPostgres(port=free_port(), data_dir=tmp_path / "postgres", durable=True)
    postgres.start()
    postgres.wait_ready()
    users = start_users_backend(infra, issuer, tmp_path, database_url=postgres.url)
    tenant = f"db-{uuid.uuid4().hex[:8]}"
    try:
        _, token = users.admin(tenant)
        auth = users.metadata(token)
        channel, stub = users.stub()
        with channel:
            assert stub.ListUsers(users_pb2.ListUsersRequest(), metadata=auth, timeout=TIMEOUT).total == 1

            postgres.kill()
            codes: list[grpc.StatusCode] = []
            started = time.monotonic()
            creation = users_pb2.CreateUserRequest(
                tenant_id=tenant, username="during", email="during@example.com"
            )
            for _ in range(6):  # reads and writes, on connections the pool held and on new ones
                for call in (
                    lambda: stub.ListUsers(users_pb2.ListUsersRequest(), metadata=auth, timeout=TIMEOUT),
                    lambda: stub.CreateUser(creation, metadata=auth, timeout=TIMEOUT),
                ):
                    with pytest.raises(grpc.RpcError) as refused:
                        call()
                    codes.append(refused.value.code())
                    assert refused.value.details() == UNAVAILABLE_MESSAGE
            answered_in = (time.monotonic() - started) / len(codes)
            assert set(codes) == {grpc.StatusCode.UNAVAILABLE}

            postgres.start()
            postgres.wait_ready()
            wait_until(lambda: _lists(stub, auth) is not None, 30, "ListUsers answering with PostgreSQL back")
            assert _lists(stub, auth) == 1  # none of the creations refused meanwhile was kept
            assert stub.CreateUser(creation, metadata=auth, timeout=TIMEOUT).user.username == "during"
        log = users.proc.log()
        assert "unhandled error" not in log
        assert "Traceback" not in log
        # Each refusal logged as a warning naming the dependency (asyncpg's refused connection is an OSError).
        assert log.count('"message": "a dependency failed during an RPC"') == len(codes)
        report(
            record_property,
            "database_killed",
            calls=len(codes),
            unavailable=codes.count(grpc.StatusCode.UNAVAILABLE),
            seconds_per_call=f"{answered_in:.2f}",
        )
    finally:
        users.stop()
        postgres.stop()


def _lists(stub: users_pb2_grpc.UserServiceStub, auth: tuple[tuple[str, str], ...]) -> int | None:
    try:
        return int(stub.ListUsers(users_pb2.ListUsersRequest(), metadata=auth, timeout=TIMEOUT).total)
    except grpc.RpcError:
        return None
