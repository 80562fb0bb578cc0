"""The three example clients against a scripted UserService: identical JSON, errors, metadata, deadline.

The scripted server (harness/servers/scripted_users.py) answers from fixed users, so the clients'
proto3 JSON (timestamps with and without fractions, unicode, omitted defaults) can be compared byte for
byte with the canonical mapping. test_clients.py runs the same clients against the real users backend.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from harness.clients import NAMES, Clients, build_clients, run_clients
from harness.servers.scripted_users import UNAUTHENTICATED_MESSAGE, ScriptedUsers, scripted_users, serve
from infra.local import free_port
from stubs.users.v1 import users_pb2

TOKEN = "scripted-token"  # noqa: S105 - not a secret: the scripted server's expected bearer value

FULL = users_pb2.User(
    id="0b9c3f7e-5d1a-4c55-9a51-2f0f4c7f8e11",
    tenant_id="acme",
    username="zoe.obrien",
    email="zoë@example.com",
    first_name="Zoë",
    last_name="O'Brien-Łukasz",
    phone="+1234567890",
    avatar_url="https://cdn.example.com/a.png?size=64&fmt=<png>",
    roles=["user", "admin"],
    is_active=True,
    created_at=Timestamp(seconds=1_700_000_000, nanos=123_000_000),
    updated_at=Timestamp(seconds=1_700_000_123, nanos=123_456_789),
)
# Defaults everywhere that can be: no roles, inactive, whole-second and micro-second timestamps.
SPARSE = users_pb2.User(
    id="7d1e2a40-0000-4000-8000-000000000002",
    tenant_id="acme",
    username="bare",
    email="bare@example.com",
    created_at=Timestamp(seconds=86_400),
    updated_at=Timestamp(seconds=1_700_000_000, nanos=5_000),
)


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Clients:
    return build_clients(tmp_path_factory.mktemp("clients"))


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedUsers, str]]:
    servicer = scripted_users({FULL.id: FULL, SPARSE.id: SPARSE}, TOKEN)
    with serve(servicer) as target:
        yield servicer, target


@pytest.mark.parametrize("user", [FULL, SPARSE], ids=["full", "sparse"])
def test_all_three_print_the_canonical_json_byte_for_byte(
    clients: Clients, scripted: tuple[ScriptedUsers, str], user: users_pb2.User
) -> None:
    servicer, target = scripted
    results = run_clients(clients, target=target, token=TOKEN, user_id=user.id)
    expected = json_format.MessageToDict(user, preserving_proto_field_name=True)
    for result in results.values():
        assert result.returncode == 0, (result.name, result.stdout, result.stderr)
        assert result.json == expected, result.name
    assert results["node"].stdout == results["python"].stdout
    assert results["go"].stdout == results["python"].stdout
    # Each sent the bearer token and a 5 s deadline.
    assert len(servicer.calls) == len(NAMES)
    for call in servicer.calls:
        assert call.user_id == user.id
        assert call.metadata["authorization"] == f"Bearer {TOKEN}"
        assert call.time_remaining is not None
        assert 3.0 < call.time_remaining <= 5.1  # grpc-timeout is rounded up on the wire


def test_options_from_the_environment(clients: Clients, scripted: tuple[ScriptedUsers, str]) -> None:
    _, target = scripted
    results = run_clients(clients, target=target, token=TOKEN, user_id=FULL.id, via_env=True)
    for result in results.values():
        assert result.returncode == 0, (result.name, result.stdout, result.stderr)
        assert result.json["id"] == FULL.id


@pytest.mark.parametrize(
    ("token", "user_id", "code", "message"),
    [
        ("", FULL.id, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE),
        ("wrong", FULL.id, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE),
        (TOKEN, "no-such-user", "NOT_FOUND", "user 'no-such-user' not found"),
    ],
)
def test_server_errors_map_to_the_same_code_and_message(
    clients: Clients, scripted: tuple[ScriptedUsers, str], token: str, user_id: str, code: str, message: str
) -> None:
    servicer, target = scripted
    results = run_clients(clients, target=target, token=token, user_id=user_id)
    for result in results.values():
        assert result.returncode == 1, (result.name, result.stdout, result.stderr)
        assert result.json == {"error": {"code": code, "message": message}}, result.name
    assert len({r.stdout for r in results.values()}) == 1
    if not token:
        assert all("authorization" not in call.metadata for call in servicer.calls)


def test_an_unreachable_backend_is_unavailable_for_all_three(clients: Clients) -> None:
    results = run_clients(clients, target=f"127.0.0.1:{free_port()}", token=TOKEN, user_id=FULL.id)
    for result in results.values():
        assert result.returncode == 1, (result.name, result.stdout, result.stderr)
        assert result.error_code == "UNAVAILABLE", result.name
        assert json.loads(result.stdout)["error"]["message"]  # each library words it differently


@pytest.mark.parametrize("name", NAMES)
def test_missing_options_are_a_usage_error(clients: Clients, name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    done = subprocess.run(clients.argv[name], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "--target" in done.stderr
