"""The example clients (Python, Node, Go in examples/clients) against the real users backend.

All three call ``users.v1.UserService/GetUser`` with the same token and user id: they must print the
same user, and map the same gRPC error to the same ``{"error": {"code", "message"}}``.
test_clients_scripted.py checks the finer points (byte-identical proto3 JSON, metadata, deadline)
against a scripted server.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from harness.clients import NAMES, Clients, build_clients, run_clients
from harness.users import UsersBackend

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Clients:
    return build_clients(tmp_path_factory.mktemp("clients"))


def without_defaults(user: dict[str, Any]) -> dict[str, Any]:
    """The user as the proto3 JSON mapping prints it: fields holding their default value left out."""
    return {key: value for key, value in user.items() if value not in ("", [], False, 0)}


def test_all_three_print_the_same_user(clients: Clients, users_backend: UsersBackend) -> None:
    tenant = f"clients-{uuid.uuid4().hex[:8]}"
    _, admin_token = users_backend.admin(tenant)
    created = users_backend.create_user(
        admin_token,
        username="zoe.client",
        email="zoe.client@example.com",
        first_name="Zoë",
        last_name="O'Brien",
        phone="+1234567890",
    )
    token = users_backend.token(created)  # the user reads their own profile

    results = run_clients(clients, target=users_backend.target, token=token, user_id=created["id"])

    for result in results.values():
        assert result.returncode == 0, (result.name, result.stdout, result.stderr)
    printed = results["python"].json
    assert printed == without_defaults(created)
    assert printed["tenant_id"] == tenant
    assert printed["first_name"] == "Zoë"
    for name in NAMES:
        assert results[name].json == printed, name
        assert results[name].stdout == results["python"].stdout, name  # the same bytes, too


def test_all_three_map_the_backends_error_the_same_way(clients: Clients, users_backend: UsersBackend) -> None:
    # No token: UNAUTHENTICATED now that the backend verifies tokens (UNIMPLEMENTED before GetUser was
    # written); whatever the backend answers, the three must report the same code and message.
    results = run_clients(clients, target=users_backend.target, token="", user_id=str(uuid.uuid4()))

    for result in results.values():
        assert result.returncode == 1, (result.name, result.stdout, result.stderr)
    errors = {name: result.json["error"] for name, result in results.items()}
    codes = {error["code"] for error in errors.values()}
    assert len(codes) == 1, errors
    assert codes != {""}, errors
    assert len({error["message"] for error in errors.values()}) == 1, errors  # the server's own words


def test_an_unknown_user_is_not_found_for_all_three(clients: Clients, users_backend: UsersBackend) -> None:
    _, admin_token = users_backend.admin(f"clients-{uuid.uuid4().hex[:8]}")
    results = run_clients(clients, target=users_backend.target, token=admin_token, user_id=str(uuid.uuid4()))

    for result in results.values():
        assert result.returncode == 1, (result.name, result.stdout, result.stderr)
        assert result.error_code == "NOT_FOUND", result.json
    assert len({result.stdout for result in results.values()}) == 1
