"""Access control (ASVS 5 V8): another user's resources, another tenant's, admin routes, guessed ids and
mass assignment in a self-update — through the real gateway and mesh, each refusal in the envelope."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from harness.forgery import Forger
from harness.mesh import Mesh
from tests.security.envelope import assert_error
from tests.security.people import Person, fresh_tenant, make_admin, sign_up

pytestmark = pytest.mark.infra
USER_NOT_FOUND = "User not found"
POST_NOT_FOUND = "Post not found"


def user_path(person: Person) -> str:
    return f"/api/v1/users/{person.user_id}"


def create_post(client: httpx.Client, author: Person) -> str:
    created = client.post(
        "/api/v1/posts", json={"title": "mine", "content": "hands off"}, headers=author.auth
    )
    assert created.status_code == 201, created.text
    post_id: str = created.json()["data"]["id"]
    return post_id


def neighbour_ids(user_id: str) -> list[str]:
    """Ids an attacker would guess from a known one: the last hex digit changed, and random ones."""
    last = user_id[-1]
    return [user_id[:-1] + ("0" if last != "0" else "1"), str(uuid.uuid4()), str(uuid.uuid4())]


# ---- another user of the same tenant ----------------------------------------------------------------


def test_a_user_cannot_change_or_delete_another_user(client: httpx.Client) -> None:
    victim = sign_up(client)
    attacker = sign_up(client, victim.tenant)
    change = {"first_name": "Mallory"}
    for method in ("PUT", "PATCH"):
        answer = client.request(method, user_path(victim), json=change, headers=attacker.auth)
        assert_error(answer, 403, "You can only update your own profile")
    assert_error(
        client.delete(user_path(victim), headers=attacker.auth), 403, "You can only delete your own account"
    )
    assert client.get(user_path(victim), headers=victim.auth).json()["data"]["first_name"] == ""


def test_a_user_cannot_change_or_delete_another_users_post(client: httpx.Client) -> None:
    author = sign_up(client)
    attacker = sign_up(client, author.tenant)
    post_id = create_post(client, author)
    changed = client.put(f"/api/v1/posts/{post_id}", json={"title": "hijacked"}, headers=attacker.auth)
    assert_error(changed, 403, "Only the author or an admin can change a post")
    deleted = client.delete(f"/api/v1/posts/{post_id}", headers=attacker.auth)
    assert_error(deleted, 403, "Only the author or an admin can delete a post")
    assert client.get(f"/api/v1/posts/{post_id}", headers=author.auth).json()["data"]["title"] == "mine"


# ---- another tenant ---------------------------------------------------------------------------------


def test_another_tenants_user_is_not_found_like_a_guessed_id(client: httpx.Client) -> None:
    """IDOR: another tenant's user and guessed ids answer the same 404, so ids reveal nothing."""
    stranger, attacker = sign_up(client), sign_up(client)
    for target in [stranger.user_id, *neighbour_ids(attacker.user_id)]:
        answer = client.get(f"/api/v1/users/{target}", headers=attacker.auth)
        assert_error(answer, 404, USER_NOT_FOUND)


def test_another_tenants_post_is_not_found_for_any_verb(client: httpx.Client) -> None:
    author, attacker = sign_up(client), sign_up(client)
    post_id = create_post(client, author)
    for target in [post_id, str(uuid.uuid4())]:
        path = f"/api/v1/posts/{target}"
        assert_error(client.get(path, headers=attacker.auth), 404, POST_NOT_FOUND)
        assert_error(client.get(f"{path}/image", headers=attacker.auth), 404, POST_NOT_FOUND)
        assert_error(client.put(path, json={"title": "x"}, headers=attacker.auth), 404, POST_NOT_FOUND)
        assert_error(client.delete(path, headers=attacker.auth), 404, POST_NOT_FOUND)
    listed = client.get("/api/v1/posts", params={"author_id": author.user_id}, headers=attacker.auth)
    assert listed.json()["data"] == {"posts": [], "total": 0, "page": 1, "page_size": 20}


def test_another_tenant_cannot_be_named_in_a_parameter_or_header(client: httpx.Client) -> None:
    attacker, stranger = sign_up(client), sign_up(client)
    listed = client.get("/api/v1/users", params={"tenant_id": stranger.tenant}, headers=attacker.auth)
    assert_error(listed, 403, "The tenant does not match the token")
    switched = client.get("/api/v1/users", headers={**attacker.auth, "X-Tenant-ID": stranger.tenant})
    assert_error(switched, 403, "X-Tenant-ID does not match the token")
    found = client.get("/api/v1/users/search", params={"q": stranger.username}, headers=attacker.auth)
    assert found.json()["data"]["total"] == 0


def test_an_admin_is_admin_of_their_own_tenant_only(client: httpx.Client, mesh: Mesh, forger: Forger) -> None:
    admin = make_admin(mesh, forger, fresh_tenant())
    stranger = sign_up(client)
    assert_error(client.get(user_path(stranger), headers=admin.auth), 404, USER_NOT_FOUND)
    patched = client.patch(user_path(stranger), json={"roles": ["admin"]}, headers=admin.auth)
    assert_error(patched, 404, USER_NOT_FOUND)
    assert_error(client.delete(user_path(stranger), headers=admin.auth), 404, USER_NOT_FOUND)
    created = client.post(
        "/api/v1/users",
        json={"tenant_id": stranger.tenant, "username": "planted", "email": "planted@example.com"},
        headers=admin.auth,
    )
    assert_error(created, 403, "The tenant does not match the token")
    assert client.get("/api/v1/users/me", headers=stranger.auth).json()["data"]["roles"] == ["user"]


def test_topics_of_the_mesh_are_out_of_reach(client: httpx.Client) -> None:
    """A topic named like Portico's own event topic is the tenant's own topic of that name."""
    user = sign_up(client)
    internal = "portico.users.v1"
    sent = client.post(f"/api/v1/topics/{internal}/messages", json={"message": "mine"}, headers=user.auth)
    assert sent.status_code == 202, sent.text
    assert sent.json()["data"]["offset"] == "0"  # a fresh topic, not the mesh's busy one
    with client.stream(
        "GET",
        f"/api/v1/topics/{internal}/messages",
        params={"from": "earliest"},
        headers={**user.auth, "Accept": "application/x-ndjson"},
    ) as stream:
        assert stream.status_code == 200
        first = json.loads(next(stream.iter_lines()))
    assert (first["topic"], first["offset"], first["message"]) == (internal, "0", "mine")


# ---- admin routes and mass assignment ------------------------------------------------------------


def test_an_admin_route_is_refused_to_a_user(client: httpx.Client) -> None:
    user = sign_up(client)
    body = {"username": "sneaky", "email": "sneaky@example.com", "roles": ["admin"]}
    answer = client.post("/api/v1/users", json=body, headers=user.auth)
    assert_error(answer, 403, "Not allowed")
    assert answer.headers["www-authenticate"] == 'Bearer realm="portico", error="insufficient_scope"'


ADMIN_ONLY = {
    "roles": ({"roles": ["admin", "user"]}, "Only admins can change roles"),
    "is_active": ({"is_active": False}, "Only admins can change is_active"),
    "email": ({"email": "taken-over@example.com"}, "Only admins can change email"),
    "roles-beside-a-name": ({"first_name": "Eve", "roles": ["admin"]}, "Only admins can change roles"),
}


@pytest.mark.parametrize("case", list(ADMIN_ONLY), ids=list(ADMIN_ONLY))
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_self_update_cannot_assign_admin_fields(client: httpx.Client, case: str, method: str) -> None:
    user = sign_up(client)
    body, message = ADMIN_ONLY[case]
    assert_error(client.request(method, user_path(user), json=body, headers=user.auth), 403, message)
    me = client.get("/api/v1/users/me", headers=user.auth).json()["data"]
    assert (me["roles"], me["is_active"], me["email"], me["first_name"]) == (["user"], True, user.email, "")


@pytest.mark.parametrize("field", ["tenant_id", "id", "created_at", "password", "deleted_at"])
def test_a_self_update_cannot_name_fields_outside_the_contract(client: httpx.Client, field: str) -> None:
    user = sign_up(client)
    answer = client.patch(user_path(user), json={field: "x"}, headers=user.auth)
    assert_error(
        answer, 400, "Invalid request body", details=[{"field": field, "description": "unknown field"}]
    )


def test_the_path_names_the_user_whatever_the_body_says(client: httpx.Client) -> None:
    user = sign_up(client)
    other = sign_up(client, user.tenant)
    answer = client.patch(
        user_path(user), json={"user_id": other.user_id, "first_name": "Eve"}, headers=user.auth
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["id"] == user.user_id
    assert client.get(user_path(other), headers=other.auth).json()["data"]["first_name"] == ""


@pytest.mark.parametrize("field", ["roles", "is_active", "id"])
def test_registration_cannot_assign_fields(client: httpx.Client, field: str) -> None:
    name = f"u{uuid.uuid4().hex[:8]}"
    body = {"tenant_id": fresh_tenant(), "username": name, "email": f"{name}@example.com"}
    value: object = {"roles": ["admin"], "is_active": True, "id": str(uuid.uuid4())}[field]
    answer = client.post(
        "/api/v1/auth/register", json={**body, "password": "copper-Lantern-58", field: value}
    )
    assert_error(
        answer, 400, "Invalid request body", details=[{"field": field, "description": "unknown field"}]
    )


@pytest.mark.parametrize("field", ["author_id", "tenant_id", "id"])
def test_a_post_cannot_be_planted_on_someone_else(client: httpx.Client, field: str) -> None:
    author = sign_up(client)
    victim = sign_up(client, author.tenant)
    value = {"author_id": victim.user_id, "tenant_id": fresh_tenant(), "id": str(uuid.uuid4())}[field]
    created = client.post("/api/v1/posts", json={"title": "t", field: value}, headers=author.auth)
    assert_error(
        created, 400, "Invalid request body", details=[{"field": field, "description": "unknown field"}]
    )
