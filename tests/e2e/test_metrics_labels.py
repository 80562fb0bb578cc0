"""Every process's /metrics after real traffic through the mesh: label values come from bounded sets (route
templates, codes, outcomes), never from what clients send — no ids, paths, emails, usernames or tokens."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.mesh import BACKENDS, Mesh
from harness.processes import wait_until

pytestmark = pytest.mark.infra
PASSWORD = "juniper-Signal-64"  # noqa: S105 (a test password)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+")
# Operations endpoints and unknown paths are labelled by name; everything else by its route template.
OPS_ROUTES = {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/assets/{name}", "unmatched"}


@dataclass(frozen=True)
class Label:
    process: str
    sample: str
    name: str
    value: str


def labels_of(url: str, process: str) -> list[Label]:
    text = httpx.get(url, timeout=10).text
    return [
        Label(process, sample.name, name, value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for name, value in sample.labels.items()
    ]


def consumer_lag_exported(mesh: Mesh, backend: str) -> bool:
    text = httpx.get(f"http://127.0.0.1:{mesh.metrics_ports[backend]}/metrics", timeout=10).text
    return "\nportico_kafka_consumer_lag{" in text


@pytest.fixture(scope="module")
def sent(mesh: Mesh) -> set[str]:
    """Drive every kind of route through the gateway; returns the client-chosen values that must never
    become label values."""
    tenant, user, friend = f"lbl-{uuid.uuid4().hex[:8]}", f"lblu{uuid.uuid4().hex[:6]}", "lblfriend"
    topic = f"lbl-topic-{uuid.uuid4().hex[:6]}"
    values = {tenant, user, f"{user}@example.com", topic, f"{friend}@example.com"}
    with httpx.Client(base_url=mesh.gateway_url, timeout=15) as http:

        def register(username: str) -> dict[str, object]:
            body = {"tenant_id": tenant, "username": username, "email": f"{username}@example.com"}
            reply = http.post("/api/v1/auth/register", json={**body, "password": PASSWORD})
            assert reply.status_code == 201, reply.text
            return reply.json()["data"]  # type: ignore[no-any-return]

        registered, second = register(user), register(friend)
        user_id, refresh = str(registered["user"]["id"]), str(registered["refresh_token"])  # type: ignore[index]
        values |= {user_id, refresh, str(registered["access_token"]), str(second["user"]["id"])}  # type: ignore[index]
        login = {"tenant_id": tenant, "username": user}
        wrong = http.post("/api/v1/auth/login", json={**login, "password": "wrong-Password-1"})
        assert wrong.status_code == 401
        rotated = http.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        assert rotated.status_code == 200
        newer = {"refresh_token": rotated.json()["data"]["refresh_token"]}
        assert http.post("/api/v1/auth/refresh", json=newer).status_code == 200
        # Not the live token's parent, so no concurrent-refresh grace: a replay.
        assert http.post("/api/v1/auth/refresh", json={"refresh_token": refresh}).status_code == 401
        logged_in = http.post("/api/v1/auth/login", json={**login, "password": PASSWORD})
        assert logged_in.status_code == 200
        token = str(logged_in.json()["data"]["access_token"])
        auth = {"Authorization": f"Bearer {token}"}
        values.add(token)
        missing = str(uuid.uuid4())
        values.add(missing)
        expected = [
            (http.get("/api/v1/users/me", headers=auth), 200),
            (http.get(f"/api/v1/users/{user_id}", headers=auth), 200),
            (http.get(f"/api/v1/users/{missing}", headers=auth), 404),
            (http.get("/api/v1/users/not-an-id", headers=auth), 400),
            (http.get(f"/api/v1/users/search?q={user}", headers=auth), 200),
            (http.patch(f"/api/v1/users/{user_id}", headers=auth, json={"first_name": "Lab"}), 200),
            (http.get(f"/api/v1/posts/{missing}", headers=auth), 404),
            (http.get(f"/api/v1/nothing/{missing}/{user}@example.com", headers=auth), 404),
            (http.post(f"/api/v1/topics/{topic}/messages", headers=auth, json={"message": "hi"}), 202),
        ]
        post = http.post("/api/v1/posts", headers=auth, json={"title": f"t {user}", "content": "c"})
        assert post.status_code == 201, post.text
        post_id = str(post.json()["data"]["id"])
        values.add(post_id)
        expected += [
            (http.get(f"/api/v1/posts/{post_id}", headers=auth), 200),
            (http.get(f"/api/v1/posts/{post_id}/image", headers=auth), 404),
            (http.delete(f"/api/v1/users/{user_id}", headers=auth), 200),  # a user.deleted event to consume
        ]
        for reply, status in expected:
            assert reply.status_code == status, (reply.request.url, reply.text)
    for backend in ("auth", "posts"):  # refreshed every 10 s (PORTICO_CONSUMER_LAG_INTERVAL)

        def lag_exported(backend: str = backend) -> bool:
            return consumer_lag_exported(mesh, backend)

        wait_until(lag_exported, 30, f"{backend} consumer lag")
    return values


@pytest.fixture(scope="module")
def scraped(mesh: Mesh, sent: set[str]) -> list[Label]:
    found = labels_of(f"{mesh.gateway_url}/metrics", "gateway")
    for backend in BACKENDS:
        found += labels_of(f"http://127.0.0.1:{mesh.metrics_ports[backend]}/metrics", backend)
    return found


def test_no_label_value_is_an_id_an_email_or_a_token(scraped: list[Label]) -> None:
    assert len({label.process for label in scraped}) == 1 + len(BACKENDS)
    for label in scraped:
        for pattern in (UUID, EMAIL, JWT):
            assert not pattern.search(label.value), label


def test_no_label_value_carries_what_a_client_sent(scraped: list[Label], sent: set[str]) -> None:
    for label in scraped:
        leaked = {value for value in sent if value in label.value}
        assert not leaked, (label, leaked)


def test_gateway_routes_are_templates_from_the_route_table(mesh: Mesh, scraped: list[Label]) -> None:
    templates = set(httpx.get(f"{mesh.gateway_url}/openapi.json", timeout=10).json()["paths"])
    routes = {label.value for label in scraped if label.process == "gateway" and label.name == "route"}
    assert routes - OPS_ROUTES <= templates, routes - OPS_ROUTES - templates
    # The traffic above reached id-bearing routes: they are there, as templates.
    assert any("{" in route for route in routes), routes
    assert "unmatched" in routes


def test_the_new_families_are_exported_with_their_bounded_labels(scraped: list[Label]) -> None:
    def values(process: str, sample: str, name: str) -> set[str]:
        return {x.value for x in scraped if (x.process, x.sample, x.name) == (process, sample, name)}

    assert {"succeeded", "invalid_credentials"} <= values("auth", "portico_auth_logins_total", "outcome")
    for backend in ("auth", "posts"):
        assert values(backend, "portico_kafka_consumer_lag", "topic") == {"portico.users.v1"}
        assert all(p.isdigit() for p in values(backend, "portico_kafka_consumer_lag", "partition"))


def test_reuse_detections_are_one_unlabelled_counter(mesh: Mesh, sent: set[str]) -> None:
    text = httpx.get(f"http://127.0.0.1:{mesh.metrics_ports['auth']}/metrics", timeout=10).text
    (family,) = [
        f for f in text_string_to_metric_families(text) if f.name == "portico_auth_refresh_reuse_detected"
    ]
    samples = [x for x in family.samples if x.name.endswith("_total")]
    assert [x.labels for x in samples] == [{}]
    assert samples[0].value >= 1  # the replay above
