"""The HTTP edge itself: odd paths, method override and verb tampering, header injection and request
smuggling, CORS with a hostile origin, and what answers leak (the server's name, internals, secrets)."""

from __future__ import annotations

import re

import httpx
import pytest

from harness.accounts import PASSWORD
from harness.mesh import Mesh
from tests.security.envelope import assert_error
from tests.security.network import ALLOWED_ORIGIN
from tests.security.people import Person, sign_up
from tests.security.wire import get, send_raw

pytestmark = pytest.mark.infra
ROUTE_NOT_FOUND = "Route not found"
METHOD_NOT_ALLOWED = "Method not allowed"
EVIL = "https://evil.example"


@pytest.fixture
def user(client: httpx.Client) -> Person:
    return sign_up(client)


# ---- odd paths: no normalisation reaches a route it should not -----------------------------------

ODD_PATHS = [
    "/api/v1/users/../users/me",
    "/api/v1/users/%2e%2e/users/me",
    "/api/v1/users/%2E%2E/me",
    "/api/v1/./users/me",
    "//api/v1/users/me",
    "/api/v1//users/me",
    "/api/v1/users/me/",
    "/API/V1/users/me",
    "/health/../api/v1/users/me",
    "/api/v1/users/%2F",
    "/api/v1/users/%2e%2e%2f%2e%2e%2fhealth",
    "/api/v1/topics/..%2f..%2fportico.users.v1/messages",
    "/.well-known/../api/v1/users",
]


@pytest.mark.parametrize("path", ODD_PATHS)
def test_an_odd_path_is_not_found(mesh: Mesh, user: Person, path: str) -> None:
    answer = send_raw(mesh.gateway_url, get(path, f"Authorization: Bearer {user.access_token}"))
    assert answer.status == 404, answer
    error = answer.json()["error"]
    assert (error["code"], error["message"]) == ("NOT_FOUND", ROUTE_NOT_FOUND)


def test_a_path_parameter_with_a_nul_is_a_400(client: httpx.Client, user: Person) -> None:
    answer = client.get("/api/v1/users/me%00", headers=user.auth)
    assert_error(
        answer,
        400,
        "Invalid request",
        details=[{"field": "user_id", "description": "must not contain NUL characters"}],
    )


# ---- method override and verb tampering -----------------------------------------------------------

OVERRIDES = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"]


@pytest.mark.parametrize("header", OVERRIDES)
def test_a_method_override_header_is_ignored(client: httpx.Client, user: Person, header: str) -> None:
    path = f"/api/v1/users/{user.user_id}"
    tunnelled = client.post(path, headers={**user.auth, header: "DELETE"})
    assert_error(tunnelled, 405, METHOD_NOT_ALLOWED)
    assert tunnelled.headers["allow"] == "DELETE, GET, HEAD, PATCH, PUT"
    read = client.get(path, headers={**user.auth, header: "DELETE"})
    assert read.status_code == 200, read.text
    assert client.get("/api/v1/users/me", headers=user.auth).json()["data"]["is_active"] is True


def test_a_method_override_parameter_is_refused(client: httpx.Client, user: Person) -> None:
    answer = client.post(f"/api/v1/users/{user.user_id}", params={"_method": "DELETE"}, headers=user.auth)
    assert_error(answer, 405, METHOD_NOT_ALLOWED)


@pytest.mark.parametrize("method", ["TRACE", "OPTIONS", "PROPFIND", "PURGE"])  # HEAD is GET's
def test_an_unexpected_verb_is_a_405(client: httpx.Client, user: Person, method: str) -> None:
    answer = client.request(method, "/api/v1/users/me", headers=user.auth)
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == "DELETE, GET, HEAD, PATCH, PUT"
    assert_error(answer, 405, METHOD_NOT_ALLOWED)
    assert user.access_token not in answer.text  # TRACE echoes nothing


def test_a_verb_of_another_route_is_a_405_with_its_allow(client: httpx.Client, user: Person) -> None:
    answer = client.delete("/api/v1/users", headers=user.auth)
    assert_error(answer, 405, METHOD_NOT_ALLOWED)
    assert answer.headers["allow"] == "GET, HEAD, POST"


# ---- headers: injection, smuggling ----------------------------------------------------------------

REQUEST_IDS = {
    "too-long": "a" * 129,
    "space": "abc def",
    "markup": "<script>alert(1)</script>",
    "encoded-crlf": "abc%0d%0aSet-Cookie:%20evil=1",
    "utf-8": "caf\u00e9",
}


@pytest.mark.parametrize("case", list(REQUEST_IDS), ids=list(REQUEST_IDS))
def test_an_unsafe_request_id_is_replaced_not_echoed(mesh: Mesh, case: str) -> None:
    answer = send_raw(mesh.gateway_url, get("/health", f"X-Request-ID: {REQUEST_IDS[case]}"))
    assert answer.status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), answer.headers
    assert "set-cookie" not in answer.headers


def test_a_safe_request_id_is_echoed(client: httpx.Client) -> None:
    assert client.get("/health", headers={"X-Request-ID": "trace-1.2:3_4"}).headers["x-request-id"] == (
        "trace-1.2:3_4"
    )


MALFORMED_HEADS = {
    "unknown-verb": get("/api/v1/users/me").replace(b"GET ", b"FOO ", 1),
    "folded-header": get("/health", "X-Request-ID: abc", " Set-Cookie: evil=1"),
    "nul-in-header": get("/health", "X-Request-ID: a\x00b"),
    "control-char-in-header": get("/health", "X-Request-ID: a\x7fb"),
    "content-length-and-chunked": (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: portico.test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
        b"GET /api/v1/users HTTP/1.1\r\nHost: portico.test\r\n\r\n"
    ),
    "two-content-lengths": (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: portico.test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{}"
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_HEADS), ids=list(MALFORMED_HEADS))
def test_a_malformed_or_ambiguous_request_is_refused_by_the_http_parser(mesh: Mesh, case: str) -> None:
    """Refused before the application: a 400 and a closed connection, so nothing smuggled behind it runs."""
    answer = send_raw(mesh.gateway_url, MALFORMED_HEADS[case])
    assert answer.status == 400, answer
    assert answer.headers["connection"] == "close"
    assert "set-cookie" not in answer.headers
    assert answer.body.count(b"HTTP/1.1") == 0  # no second answer: the smuggled request was not served


def test_a_websocket_upgrade_is_answered_as_plain_http(mesh: Mesh, user: Person) -> None:
    # No route speaks WebSocket: no 101, and the request is judged as any other (here: a route it reaches).
    upgrade = (
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    )
    anonymous = send_raw(mesh.gateway_url, get("/api/v1/users/me", *upgrade))
    assert anonymous.status == 401
    assert anonymous.json()["error"]["code"] == "UNAUTHORIZED"
    mine = send_raw(
        mesh.gateway_url, get("/api/v1/users/me", *upgrade, f"Authorization: Bearer {user.access_token}")
    )
    assert mine.status == 200
    assert mine.json()["data"]["id"] == user.user_id
    assert "WebSocket library" not in mesh.procs["gateway"].log()  # uvicorn's advice is not logged


def test_the_host_header_is_not_reflected(mesh: Mesh) -> None:
    for path in ("/openapi.json", "/docs", "/api/v1/nothing"):
        request = get(path, "X-Forwarded-Host: evil.example").replace(b"portico.test", b"evil.example")
        answer = send_raw(mesh.gateway_url, request)
        assert b"evil.example" not in answer.body, path
        assert "evil.example" not in str(answer.headers), path


# ---- CORS with a hostile origin --------------------------------------------------------------------

PREFLIGHT = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}


def _no_cors_grant(response: httpx.Response) -> None:
    assert "access-control-allow-origin" not in response.headers, response.headers
    assert "access-control-allow-credentials" not in response.headers, response.headers


def test_cors_off_grants_no_origin(client: httpx.Client, user: Person) -> None:
    """The session's gateway has CORS off (the default): no origin is granted anything."""
    read = client.get("/api/v1/users/me", headers={**user.auth, "Origin": EVIL})
    assert read.status_code == 200
    _no_cors_grant(read)
    preflight = client.options("/api/v1/users/me", headers={"Origin": EVIL, **PREFLIGHT})
    assert_error(preflight, 405, METHOD_NOT_ALLOWED)
    _no_cors_grant(preflight)


@pytest.mark.parametrize(
    "origin", [EVIL, "null", f"{ALLOWED_ORIGIN}.evil.example", "https://evil.example/https://app.example"]
)
def test_a_hostile_origin_is_granted_nothing(strict: httpx.Client, origin: str) -> None:
    preflight = strict.options("/api/v1/users/me", headers={"Origin": origin, **PREFLIGHT})
    assert_error(preflight, 400, "Disallowed CORS origin")
    _no_cors_grant(preflight)
    simple = strict.get("/health", headers={"Origin": origin})
    assert simple.status_code == 200
    _no_cors_grant(simple)


def test_the_allowed_origin_is_granted_without_credentials(strict: httpx.Client) -> None:
    preflight = strict.options("/api/v1/users/me", headers={"Origin": ALLOWED_ORIGIN, **PREFLIGHT})
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "access-control-allow-credentials" not in preflight.headers
    assert "Origin" in preflight.headers["vary"]


# ---- what answers say about the server -------------------------------------------------------------


def test_no_answer_names_the_server_software(mesh: Mesh, client: httpx.Client, user: Person) -> None:
    """Finding 6: every answer said `server: uvicorn`."""
    answers = {
        "health": client.get("/health"),
        "api": client.get("/api/v1/users/me", headers=user.auth),
        "not-found": client.get("/api/v1/nothing-here"),
        "unauthorized": client.get("/api/v1/users/me"),
        "bad-body": client.post(
            "/api/v1/auth/login", content=b"{", headers={"Content-Type": "application/json"}
        ),
    }
    named = {case: a.headers["server"] for case, a in answers.items() if "server" in a.headers}
    parser = send_raw(mesh.gateway_url, get("/health", "X-Request-ID: a\x00b"))
    if "server" in parser.headers:
        named["http-parser-400"] = parser.headers["server"]
    assert named == {}


def test_metrics_do_not_name_the_interpreter(client: httpx.Client) -> None:
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "python_info" not in metrics.text


def test_the_jwks_holds_public_keys_only(client: httpx.Client) -> None:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}, key


def test_no_answer_carries_a_password_or_its_hash(client: httpx.Client) -> None:
    user = sign_up(client)
    answers = [
        client.post("/api/v1/auth/login", json=user.login_body()),
        client.get("/api/v1/users/me", headers=user.auth),
        client.get("/api/v1/users", headers=user.auth),
        client.get(f"/api/v1/users/{user.user_id}", headers=user.auth),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert PASSWORD not in answer.text
        assert "$argon2" not in answer.text
        # No member that could hold one: `password_change_required` (a flag) is the only name allowed.
        keys = set(re.findall(r'"([A-Za-z_]*password[A-Za-z_]*)"\s*:', answer.text, flags=re.IGNORECASE))
        assert keys <= {"password_change_required"}, keys


def test_errors_carry_the_envelope_and_nothing_internal(mesh: Mesh, client: httpx.Client) -> None:
    answers = [
        client.get("/api/v1/users/not-a-uuid", headers={"Authorization": "Bearer x.y.z"}),
        client.post("/api/v1/auth/login", content=b"{", headers={"Content-Type": "application/json"}),
        client.post("/api/v1/auth/login", json={"tenant_id": "t" * 60, "username": "ab", "password": "p"}),
        client.get("/api/v1/nothing-here"),
    ]
    internal = [f"127.0.0.1:{port}" for port in mesh.ports.values()] + [
        "Traceback",
        "sqlalchemy",
        "grpc",
        'File "',
    ]
    for answer in answers:
        assert_error(answer, answer.status_code)
        for word in internal:
            assert word not in answer.text, (word, answer.text)
