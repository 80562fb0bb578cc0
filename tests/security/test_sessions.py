"""Session management (ASVS 5 V7): logout, refresh-token rotation and reuse, and the end of every
session when a user is deleted or loses a role — each at once, through the real gateway and mesh."""

from __future__ import annotations

import httpx
import jwt
import pytest

from harness.forgery import Forger
from harness.mesh import Mesh
from harness.processes import wait_until
from tests.security.envelope import assert_error
from tests.security.people import Person, bearer, fresh_tenant, make_admin, sign_up

pytestmark = pytest.mark.infra
ME = "/api/v1/users/me"
REVOKED = "Token has been revoked"
REFRESH_FAILED = "Invalid token, Please login again"
LOGIN_FAILED = "Invalid username or password"


def refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def rotated(client: httpx.Client, token: str) -> dict[str, str]:
    answer = refresh(client, token)
    assert answer.status_code == 200, answer.text
    pair: dict[str, str] = answer.json()["data"]
    return pair


def test_logout_ends_the_access_token_and_its_refresh_token(client: httpx.Client) -> None:
    user = sign_up(client)
    out = client.post("/api/v1/auth/logout", json={}, headers=user.auth)
    assert out.status_code == 200, out.text
    assert out.json() == {"data": {"status": "logout successful"}}
    assert_error(client.get(ME, headers=user.auth), 401, REVOKED)
    assert_error(refresh(client, user.refresh_token), 401, REFRESH_FAILED)


def test_logout_with_someone_elses_refresh_token_ends_nothing_of_theirs(client: httpx.Client) -> None:
    victim, attacker = sign_up(client), sign_up(client)
    out = client.post(
        "/api/v1/auth/logout", json={"refresh_token": victim.refresh_token}, headers=attacker.auth
    )
    assert out.status_code == 200, out.text
    assert client.get(ME, headers=victim.auth).status_code == 200
    assert rotated(client, victim.refresh_token)["access_token"]


def test_a_replayed_refresh_token_ends_the_whole_login(client: httpx.Client) -> None:
    user = sign_up(client)
    first = rotated(client, user.refresh_token)
    second = rotated(client, first["refresh_token"])
    # The original token is spent twice over (not the live token's parent, so no retry grace applies).
    assert_error(refresh(client, user.refresh_token), 401, REFRESH_FAILED)
    assert_error(refresh(client, second["refresh_token"]), 401, REFRESH_FAILED)
    assert_error(client.get(ME, headers=bearer(second["access_token"])), 401, REVOKED)


MADE_UP = {
    "empty": "",
    "huge": "x" * 10_000,
    "guessed": "not-a-refresh-token",
    "jwt": "eyJhbGciOiJub25lIn0.e30.",
}


@pytest.mark.parametrize("token", list(MADE_UP.values()), ids=list(MADE_UP))
def test_a_made_up_refresh_token_is_refused(client: httpx.Client, token: str) -> None:
    assert_error(refresh(client, token), 401, REFRESH_FAILED)


def test_an_access_token_is_not_a_refresh_token(client: httpx.Client) -> None:
    user = sign_up(client)
    assert_error(refresh(client, user.access_token), 401, REFRESH_FAILED)


def _delete_self(client: httpx.Client, user: Person) -> None:
    gone = client.delete(f"/api/v1/users/{user.user_id}", headers=user.auth)
    assert gone.status_code == 200, gone.text
    assert gone.json() == {"data": {"message": "User deleted successfully"}}


def test_deletion_ends_the_access_token_at_once_everywhere(client: httpx.Client) -> None:
    user = sign_up(client)
    _delete_self(client, user)
    assert_error(client.get(ME, headers=user.auth), 401, REVOKED)
    assert_error(client.get("/api/v1/posts", headers=user.auth), 401, REVOKED)
    published = client.post("/api/v1/topics/after-death/messages", json={"message": "x"}, headers=user.auth)
    assert_error(published, 401, REVOKED)


# Auth learns of a deletion from the users backend's event; until it has, the old password and refresh
# token must not work either. The race is tried on a few users, as one try may fall after the event.
TRIES = 3


def test_deletion_ends_login_at_once(client: httpx.Client) -> None:
    """CONTRACT: a deleted user "can no longer log in" — from the moment the deletion is answered."""
    answers = []
    for _ in range(TRIES):
        user = sign_up(client)
        _delete_self(client, user)
        answers.append(client.post("/api/v1/auth/login", json=user.login_body()))
    for answer in answers:
        assert_error(answer, 401, LOGIN_FAILED)


def test_deletion_ends_the_refresh_token_at_once(client: httpx.Client) -> None:
    answers = []
    for _ in range(TRIES):
        user = sign_up(client)
        _delete_self(client, user)
        answers.append(refresh(client, user.refresh_token))
    for answer in answers:
        assert_error(answer, 401, REFRESH_FAILED)


def _admin_login(client: httpx.Client, user: Person) -> str:
    """Log in until auth has learnt the new role (it follows users' events) and the token works."""
    found: list[str] = []

    def admin_token_works() -> bool:
        login = client.post("/api/v1/auth/login", json=user.login_body())
        assert login.status_code == 200, login.text
        token = login.json()["data"]["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        # A token issued in the same second as the promotion is ended by it (JWT times are whole seconds).
        if "admin" in claims["roles"] and client.get(ME, headers=bearer(token)).status_code == 200:
            found.append(token)
        return bool(found)

    wait_until(admin_token_works, 30, "a login with the admin role", interval=0.5)
    return found[0]


def test_a_demoted_admin_loses_admin_rights_at_once(client: httpx.Client, mesh: Mesh, forger: Forger) -> None:
    """Finding 1: a role change must end the user's sessions at once, not when the token expires."""
    tenant = fresh_tenant()
    boss = make_admin(mesh, forger, tenant)
    deputy = sign_up(client, tenant)
    promoted = client.patch(
        f"/api/v1/users/{deputy.user_id}", json={"roles": ["admin", "user"]}, headers=boss.auth
    )
    assert promoted.status_code == 200, promoted.text
    admin_token = _admin_login(client, deputy)
    listed = client.get("/api/v1/users", headers=bearer(admin_token))
    assert listed.status_code == 200, listed.text

    demoted = client.patch(f"/api/v1/users/{deputy.user_id}", json={"roles": ["user"]}, headers=boss.auth)
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["data"]["roles"] == ["user"]
    create = {"username": "made-by-ex-admin", "email": "ex-admin@example.com"}
    assert_error(client.post("/api/v1/users", json=create, headers=bearer(admin_token)), 401, REVOKED)
    assert_error(client.get(ME, headers=bearer(admin_token)), 401, REVOKED)
