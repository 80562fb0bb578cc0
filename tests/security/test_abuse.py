"""Abuse of the public routes: account enumeration through login and registration answers (the answers
are compared, never their timing), rate-limit bypasses (spoofed client addresses, one account under many
spellings) and client-chosen strings that would grow the mesh's Redis."""

from __future__ import annotations

import unicodedata
import uuid

import httpx
import pytest
import redis

from harness.accounts import PASSWORD
from harness.mesh import Mesh
from tests.security.envelope import assert_error
from tests.security.network import STRICT_LOGIN, STRICT_PER_IP, fresh_address
from tests.security.people import Person, fresh_tenant, sign_up

pytestmark = pytest.mark.infra
LOGIN = "/api/v1/auth/login"
LOGIN_FAILED = "Invalid username or password"
WRONG = "wrong-Password-1"
ACCOUNT_LIMIT = 5  # auth's default failed logins of one account before a lockout
# Headers whose values differ per answer even when the answers are the same.
VOLATILE = {
    "date",
    "x-request-id",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit",
    "content-length",
}


def _without_request_id(response: httpx.Response) -> dict[str, object]:
    error = dict(response.json()["error"])
    error.pop("request_id")
    return error


# ---- enumeration -----------------------------------------------------------------------------------


def test_login_failures_do_not_tell_which_part_was_wrong(client: httpx.Client) -> None:
    user = sign_up(client)
    attempts = {
        "wrong-password": {"tenant_id": user.tenant, "username": user.username, "password": WRONG},
        "wrong-password-by-email": {"tenant_id": user.tenant, "email": user.email, "password": WRONG},
        "unknown-user": {"tenant_id": user.tenant, "username": "nobody-here", "password": WRONG},
        "unknown-email": {"tenant_id": user.tenant, "email": "nobody@example.com", "password": WRONG},
        "unknown-tenant": {"tenant_id": fresh_tenant(), "username": user.username, "password": PASSWORD},
    }
    answers = {case: client.post(LOGIN, json=body) for case, body in attempts.items()}
    for case, answer in answers.items():
        assert_error(answer, 401, LOGIN_FAILED)
        assert _without_request_id(answer) == _without_request_id(answers["unknown-user"]), case
        header_names = set(answer.headers) - VOLATILE
        assert header_names == set(answers["unknown-user"].headers) - VOLATILE, case


def test_registration_says_only_that_a_name_is_taken(client: httpx.Client) -> None:
    """CONTRACT: a taken username or email is a 409 (registration has to say so); nothing more leaks,
    and another tenant is free to use the same names."""
    user = sign_up(client)
    body = {"tenant_id": user.tenant, "username": user.username, "email": "other@example.com"}
    taken = client.post("/api/v1/auth/register", json={**body, "password": PASSWORD})
    assert_error(taken, 409, "A user with this username already exists")
    assert user.user_id not in taken.text
    elsewhere = client.post(
        "/api/v1/auth/register", json={**body, "tenant_id": fresh_tenant(), "password": PASSWORD}
    )
    assert elsewhere.status_code == 201, elsewhere.text


# ---- rate-limit bypass -----------------------------------------------------------------------------

SPOOFING = ["X-Forwarded-For", "X-Real-IP", "True-Client-IP", "X-Client-IP", "Forwarded"]


def test_spoofed_forwarding_headers_do_not_split_the_ip_budget(strict: httpx.Client) -> None:
    """The stricter gateway trusts no proxy: a new address per request in any forwarding header still
    spends one budget, so a 429 comes (it never would if each spoofed address had a budget of its own)."""
    statuses = []
    for i in range(2 * STRICT_PER_IP):
        header = SPOOFING[i % len(SPOOFING)]
        address = f"198.51.100.{i + 1}"
        value = f"for={address}" if header == "Forwarded" else address
        statuses.append(strict.get("/.well-known/jwks.json", headers={header: value}).status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {200}, statuses


def test_a_client_chosen_address_is_not_what_auth_counts(mesh: Mesh, mesh_redis: redis.Redis) -> None:
    """Failed logins are counted against the address the gateway saw, whatever the client claims."""
    address, claimed = fresh_address(), "203.0.113.77"
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, transport=transport) as client:
        spoofed = {"X-Client-IP": claimed, "X-Forwarded-For": claimed, "X-Real-IP": claimed}
        answer = client.post(
            LOGIN,
            json={"tenant_id": fresh_tenant(), "username": "nobody", "password": WRONG},
            headers=spoofed,
        )
    assert_error(answer, 401, LOGIN_FAILED)
    assert mesh_redis.exists(f"portico:auth:fail:ip:{claimed}") == 0
    assert mesh_redis.zcard(f"portico:auth:fail:ip:{address}") == 1


def _spend_login_budget(strict: httpx.Client, user: Person) -> None:
    for _ in range(STRICT_LOGIN):
        assert_error(strict.post(LOGIN, json=user.login_body(WRONG)), 401, LOGIN_FAILED)


def _assert_refused_by_the_login_limit(answer: httpx.Response) -> None:
    # Whether the gateway or auth keeps the account's budget, the contract's answer is this 429.
    assert_error(answer, 429)


def _variant(user: Person, case: str) -> dict[str, str]:
    base = {"tenant_id": user.tenant, "password": WRONG}
    return {
        "leading-space": {**base, "username": f" {user.username}"},
        "trailing-tab": {**base, "username": f"{user.username}\t"},
        "name-and-junk-email": {
            **base,
            "username": user.username,
            "email": f"junk-{uuid.uuid4().hex}@x.example",
        },
        "upper-case": {**base, "username": user.username.upper()},
        "fullwidth": {**base, "username": unicodedata.normalize("NFKC", user.username).translate(_FULLWIDTH)},
    }[case]


_FULLWIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}  # ASCII → its fullwidth form (NFKC folds it back)


@pytest.mark.parametrize(
    "case", ["leading-space", "trailing-tab", "name-and-junk-email", "upper-case", "fullwidth"]
)
def test_one_account_has_one_login_budget_however_it_is_spelt(strict: httpx.Client, case: str) -> None:
    """Finding 2: the per-account login limit must not be split by `" name"`, `"name\\t"` or the name with
    a junk email; case and width are controls that already share it."""
    user = sign_up(strict)
    _spend_login_budget(strict, user)
    _assert_refused_by_the_login_limit(strict.post(LOGIN, json=_variant(user, case)))


def test_the_email_form_spends_the_same_account_lockout_as_the_username(client: httpx.Client) -> None:
    """The gateway cannot tell that an email and a username name one account without a lookup, so at the
    edge they are two budgets; auth's lockout counts the account found, so both spend one: after
    ``ACCOUNT_LIMIT`` failures by username even the right password by email is refused (with the same
    answer as a wrong one: a lockout is not announced)."""
    user, control = sign_up(client), sign_up(client)
    for _ in range(ACCOUNT_LIMIT):
        assert_error(client.post(LOGIN, json=user.login_body(WRONG)), 401, LOGIN_FAILED)
    by_email = {"tenant_id": user.tenant, "email": user.email, "password": PASSWORD}
    assert_error(client.post(LOGIN, json=by_email), 401, LOGIN_FAILED)
    # The control: the right password by email logs an account in that was not attacked.
    control_by_email = {"tenant_id": control.tenant, "email": control.email, "password": PASSWORD}
    assert client.post(LOGIN, json=control_by_email).status_code == 200


def test_the_default_tenant_has_one_login_budget_named_or_not(strict: httpx.Client) -> None:
    user = sign_up(strict, "default")
    _spend_login_budget(strict, user)
    _assert_refused_by_the_login_limit(
        strict.post(LOGIN, json={"username": user.username, "password": WRONG})
    )


# ---- client-chosen strings never become unbounded Redis keys --------------------------------------

KEY_BOUND = 256  # bytes; every key the mesh writes is a prefix plus ids and bounded names


@pytest.mark.parametrize("field", ["username", "email"])
def test_a_huge_login_name_does_not_become_a_huge_redis_key(
    client: httpx.Client, mesh_redis: redis.Redis, field: str
) -> None:
    """Finding 3: a 256 KiB username became a 256 KiB rate-limit key."""
    huge = f"{uuid.uuid4().hex}{'x' * 256 * 1024}"
    answer = client.post(LOGIN, json={"tenant_id": fresh_tenant(), field: huge, "password": WRONG})
    # The contract's 401 for an unknown account, or a 400 naming the field: either, never a 5xx.
    if answer.status_code == 400:
        assert_error(answer, 400)
    else:
        assert_error(answer, 401, LOGIN_FAILED)
    long_keys = {key[:80]: len(key) for key in mesh_redis.scan_iter(count=1000) if len(key) > KEY_BOUND}
    assert long_keys == {}
