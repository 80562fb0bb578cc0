"""The contract's REST API through the gateway, against the real mesh (the unary routes wired so far)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from harness.accounts import PASSWORD, register

pytestmark = pytest.mark.infra


@pytest.fixture
def tenant() -> str:
    return f"rest-{uuid.uuid4().hex[:8]}"


def test_register_login_and_me(client: httpx.Client, tenant: str) -> None:
    registered = register(client, tenant, "rita")
    assert registered["token_type"] == "bearer"  # noqa: S105 (the OAuth token_type value)
    user = registered["user"]
    assert isinstance(user, dict)
    assert set(user) >= {
        "id",
        "tenant_id",
        "username",
        "email",
        "first_name",
        "last_name",
        "phone",
        "avatar_url",
        "roles",
        "is_active",
        "created_at",
        "updated_at",
    }
    login = client.post(
        "/api/v1/auth/login", json={"tenant_id": tenant, "username": "rita", "password": PASSWORD}
    )
    assert login.status_code == 200
    token = login.json()["data"]["access_token"]
    me = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-me-1"}
    )
    assert me.status_code == 200
    assert me.headers["x-request-id"] == "req-me-1"
    assert me.json() == {"data": {**user, "updated_at": me.json()["data"]["updated_at"]}}


def test_errors_use_the_contract_envelope(client: httpx.Client, tenant: str) -> None:
    token = register(client, tenant, "sam")["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    cases = [
        (client.get("/api/v1/users/not-a-uuid", headers=auth), 400, "BAD_REQUEST"),
        (client.get(f"/api/v1/users/{uuid.uuid4()}", headers=auth), 404, "NOT_FOUND"),
        (client.get("/api/v1/users?page_size=101", headers=auth), 400, "BAD_REQUEST"),
        (client.get("/api/v1/users?page=abc", headers=auth), 400, "BAD_REQUEST"),
        (client.get("/api/v1/users?color=blue", headers=auth), 400, "BAD_REQUEST"),
        (client.get("/api/v1/users/me"), 401, "UNAUTHORIZED"),
        (
            client.post("/api/v1/auth/login", json={"username": "sam", "password": "wrong-one-here"}),
            401,
            "UNAUTHORIZED",
        ),
        (client.delete("/api/v1/users", headers=auth), 405, "METHOD_NOT_ALLOWED"),
        (client.get("/api/v1/nothing-here"), 404, "NOT_FOUND"),
        (
            client.post(
                "/api/v1/auth/login", content=b"username=sam", headers={"Content-Type": "text/plain"}
            ),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            client.post(
                "/api/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
            ),
            400,
            "BAD_REQUEST",
        ),
        (client.post("/api/v1/auth/login", json={"username": "sam", "pasword": "typo"}), 400, "BAD_REQUEST"),
        (
            client.post(
                "/api/v1/auth/login",
                content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                headers={"Content-Type": "application/json"},
            ),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.text)
        error = response.json()["error"]
        assert (error["status_code"], error["code"]) == (status, code)
        assert error["request_id"] == response.headers["x-request-id"]
        assert "Traceback" not in response.text
    assert cases[7][0].headers["allow"]
    assert cases[0][0].json()["error"]["message"] == "Invalid user ID format"  # seed 003's wording
    assert cases[0][0].json()["error"]["details"] == [
        {"field": "user_id", "description": "must be a user id (UUID)"}
    ]
    invalid = client.post(
        "/api/v1/auth/register",
        json={"tenant_id": tenant, "username": "tia", "email": "nope", "password": PASSWORD},
    )
    assert invalid.status_code == 400
    assert {d["field"] for d in invalid.json()["error"]["details"]} == {"email"}
    assert (
        client.post("/api/v1/auth/login", json={"username": "sam", "password": "wrong-one-here"}).json()[
            "error"
        ]["message"]
        == "Invalid username or password"
    )


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/users/search?q=someone&", "/api/v1/posts"])
def test_out_of_range_pages_are_refused_not_defaulted(client: httpx.Client, tenant: str, path: str) -> None:
    auth = {"Authorization": f"Bearer {register(client, tenant, 'pia')['access_token']}"}
    base = path if path.endswith("&") else f"{path}?"
    for query, field, rule in [
        ("page=0", "page", "must be at least 1"),
        ("page_size=0", "page_size", "must be between 1 and 100"),
        ("page_size=101", "page_size", "must be between 1 and 100"),
    ]:
        refused = client.get(base + query, headers=auth)
        assert refused.status_code == 400, (query, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "BAD_REQUEST"
        assert {"field": field, "description": rule} in error["details"]
    listed = client.get(base + "page=1&page_size=100", headers=auth)
    assert listed.status_code == 200
    assert (listed.json()["data"]["page"], listed.json()["data"]["page_size"]) == (1, 100)
    defaults = client.get(path.rstrip("?&"), headers=auth).json()["data"]  # not sent: page 1 of 20
    assert (defaults["page"], defaults["page_size"]) == (1, 20)


def test_search_wins_over_the_id_route_and_jwks_is_raw(client: httpx.Client, tenant: str) -> None:
    token = register(client, tenant, "uma")["access_token"]
    found = client.get(
        "/api/v1/users/search", params={"q": "uma"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert found.status_code == 200
    assert found.json()["data"]["total"] == 1
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert "data" not in jwks.json()
    key = jwks.json()["keys"][0]
    assert key["kty"] == "OKP"
    assert "y" not in key  # RFC 8037: an OKP key has no y member (not even null)


def test_tokens_are_checked_at_the_edge(client: httpx.Client, tenant: str) -> None:
    registered = register(client, tenant, "vic")
    token = str(registered["access_token"])
    me = "/api/v1/users/me"
    missing = client.get(me)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    assert client.get(me, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    none_alg = "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + payload + "."
    assert client.get(me, headers={"Authorization": f"Bearer {none_alg}"}).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get(me, headers={**auth, "X-Tenant-ID": tenant}).status_code == 200
    other = client.get(me, headers={**auth, "X-Tenant-ID": f"{tenant}-other"})
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "FORBIDDEN"
    # Admin-only route (required_roles in the proto policy): refused at the edge.
    create = client.post("/api/v1/users", json={"email": "new@example.com"}, headers=auth)
    assert create.status_code == 403
    # Logout takes effect at once, in the gateway too.
    assert client.post("/api/v1/auth/logout", json={}, headers=auth).json() == {
        "data": {"status": "logout successful"}
    }
    after = client.get(me, headers=auth)
    assert after.status_code == 401
    assert after.json()["error"]["message"] == "Token has been revoked"


def test_nul_characters_are_a_400_naming_the_field(client: httpx.Client, tenant: str) -> None:
    # PostgreSQL cannot store U+0000: without the backends' guard these were a 500 and a 503.
    login = client.post(
        "/api/v1/auth/login", json={"tenant_id": f"{tenant}\u0000", "username": "ana", "password": "x" * 12}
    )
    assert login.status_code == 400, login.text
    assert {"field": "tenant_id", "description": "must not contain NUL characters"} in login.json()["error"][
        "details"
    ]
    registered = client.post(
        "/api/v1/auth/register",
        json={"tenant_id": tenant, "username": "n\u0000l", "email": "nul@example.com", "password": "x" * 12},
    )
    assert registered.status_code == 400, registered.text
    assert registered.json()["error"]["details"][0]["field"] == "username"
