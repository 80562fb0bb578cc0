"""urlencoded form bodies through the real mesh: the login form, register, and posts without an image."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from harness.accounts import PASSWORD, bearer, register

pytestmark = pytest.mark.infra


@pytest.fixture
def tenant() -> str:
    return f"form-{uuid.uuid4().hex[:8]}"


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def test_login_with_a_form(client: httpx.Client, tenant: str) -> None:
    register(client, tenant, "fern")
    # httpx's data= sends application/x-www-form-urlencoded, as an HTML form or OAuth client does.
    login = client.post(
        "/api/v1/auth/login", data={"tenant_id": tenant, "username": "fern", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    token = login.json()["data"]
    assert client.get("/api/v1/users/me", headers=bearer(token)).json()["data"]["username"] == "fern"
    # An OAuth 2.0 password-grant form (FastAPI's OAuth2PasswordRequestForm, Swagger's "Authorize").
    oauth = {"grant_type": "password", "scope": "", "client_id": "app", "client_secret": "s3cret"}
    form = {**oauth, "tenant_id": tenant, "username": "fern", "password": PASSWORD}
    assert client.post("/api/v1/auth/login", data=form).status_code == 200
    refreshed = client.post(
        "/api/v1/auth/refresh", data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    unsupported = client.post("/api/v1/auth/login", data={**form, "grant_type": "client_credentials"})
    assert {"field": "grant_type", "description": "unknown field"} in error_of(unsupported, 400)["details"]
    wrong = client.post(
        "/api/v1/auth/login", data={"tenant_id": tenant, "username": "fern", "password": "x" * 9}
    )
    assert error_of(wrong, 401)["message"] == "Invalid username or password"


def test_register_with_a_form_and_its_validation_errors(client: httpx.Client, tenant: str) -> None:
    form = {"tenant_id": tenant, "username": "gale", "email": "gale@example.com", "password": PASSWORD}
    created = client.post("/api/v1/auth/register", data=form)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["user"]["email"] == "gale@example.com"
    bad = client.post("/api/v1/auth/register", data={**form, "username": "x y", "favourite": "blue"})
    error = error_of(bad, 400)
    assert error["code"] == "BAD_REQUEST"
    assert {"field": "favourite", "description": "unknown field"} in error["details"]


def test_posts_with_a_form_but_never_their_image(client: httpx.Client, tenant: str) -> None:
    auth = bearer(register(client, tenant))
    created = client.post("/api/v1/posts", data={"title": "Formed", "content": "no picture"}, headers=auth)
    assert created.status_code == 201, created.text
    post = created.json()["data"]
    assert (post["title"], post["content"], post["image_url"]) == ("Formed", "no picture", None)
    updated = client.put(f"/api/v1/posts/{post['id']}", data={"title": "Reformed"}, headers=auth)
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["title"] == "Reformed"
    # The image bytes come only from a multipart file part, whose content is checked.
    smuggled = client.post("/api/v1/posts", data={"title": "t", "image": "GIF89a..."}, headers=auth)
    assert {"field": "image", "description": "unknown field"} in error_of(smuggled, 400)["details"]


def test_other_body_types_are_still_a_415(client: httpx.Client) -> None:
    answer = client.post("/api/v1/auth/login", content=b"username=a", headers={"Content-Type": "text/plain"})
    error = error_of(answer, 415)
    assert error["message"] == "The body must be application/json or application/x-www-form-urlencoded"
