"""The JWT attack list at the EDGE: every forged, stale, revoked or malformed credential is refused by the
real gateway (session mesh) with 401/403 in the contract's envelope, 401s with ``WWW-Authenticate``.

Forgeries that need a trusted signature are signed with the mesh auth backend's own current key (loaded
from its key directory), so each row isolates exactly one defect; the control rows show the same
forger's honest token is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backends.auth.config import AuthSettings
from backends.auth.keys import KeyRing
from harness.mesh import Mesh

pytestmark = pytest.mark.infra
PASSWORD = "amber-Kettle-93"  # noqa: S105 (a test password)
ME = "/api/v1/users/me"
LEEWAY = 30  # PORTICO_JWT_LEEWAY's default, which the mesh runs with
Headers = list[tuple[str, str]]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class Account:
    user_id: str
    tenant: str
    access_token: str
    refresh_token: str


@dataclass
class Edge:
    """What the rows need: a client on the gateway, a registered user, and the auth key to forge with."""

    client: httpx.Client
    account: Account
    key: Ed25519PrivateKey
    kid: str
    public_x: str

    def claims(self, **changes: Any) -> dict[str, Any]:
        """The account's real claims with a fresh jti; ``changes`` override, a None value removes."""
        real = jwt.decode(self.account.access_token, options={"verify_signature": False})
        now = int(time.time())
        claims = {**real, "jti": uuid.uuid4().hex, "iat": now, "nbf": now, "exp": now + 300, **changes}
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.key, algorithm="EdDSA", headers={"kid": self.kid, "typ": "at+jwt", **header}
        )

    def forge(self, **changes: Any) -> str:
        return self.sign(self.claims(**changes))

    def register(self) -> Account:
        """A fresh user of its own tenant (for rows that revoke or delete)."""
        return register(self.client, f"atk-{uuid.uuid4().hex[:8]}")


def register(client: httpx.Client, tenant: str) -> Account:
    name = f"u{uuid.uuid4().hex[:8]}"
    response = client.post(
        "/api/v1/auth/register",
        json={"tenant_id": tenant, "username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return Account(data["user"]["id"], tenant, data["access_token"], data["refresh_token"])


def _auth_key(mesh: Mesh) -> tuple[Ed25519PrivateKey, str, str]:
    """The mesh auth backend's current signing key, read with the settings of the mesh's environment."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in mesh.env.items():
            env.setenv(name, value)
        settings = AuthSettings()
    passphrase = settings.keys_passphrase.get_secret_value().encode() if settings.keys_passphrase else None
    signing = KeyRing.load(settings.keys_dir, passphrase).signing_key(datetime.now(UTC))
    return signing.private_key, signing.kid, signing.x


@pytest.fixture(scope="module")
def edge(mesh: Mesh) -> Iterator[Edge]:
    with httpx.Client(base_url=mesh.gateway_url, timeout=15) as client:
        account = register(client, f"atk-{uuid.uuid4().hex[:8]}")
        key, kid, x = _auth_key(mesh)
        served = client.get("/.well-known/jwks.json").json()
        assert kid in {k["kid"] for k in served["keys"]}, "the forging key must be the mesh's published key"
        assert jwt.get_unverified_header(account.access_token)["kid"] == kid
        yield Edge(client, account, key, kid, x)


def _bearer(token: str) -> Headers:
    return [("Authorization", f"Bearer {token}")]


# ---- the rows: each builds the request headers, possibly after a real flow (logout, delete) --------


def _alg_none(e: Edge) -> Headers:
    header = _b64({"alg": "none", "typ": "at+jwt", "kid": e.kid})
    return _bearer(f"{header}.{_b64(e.claims())}.")


def _hs256_with_public_key(e: Edge) -> Headers:
    # The classic confusion: HMAC keyed with the public key everyone can fetch. PyJWT refuses to HMAC with
    # a key that looks like a public key, so the signature is made by hand.
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': e.kid})}.{_b64(e.claims())}"
    digest = hmac.new(e.public_x.encode(), signing_input.encode(), hashlib.sha256).digest()
    return _bearer(f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}")


def _unknown_kid(e: Edge) -> Headers:
    return _bearer(
        jwt.encode(e.claims(), Ed25519PrivateKey.generate(), "EdDSA", {"kid": "k-unknown", "typ": "at+jwt"})
    )


def _own_key_with_real_kid(e: Edge) -> Headers:
    return _bearer(
        jwt.encode(e.claims(), Ed25519PrivateKey.generate(), "EdDSA", {"kid": e.kid, "typ": "at+jwt"})
    )


def _tampered_payload(e: Edge) -> Headers:
    header, _, signature = e.account.access_token.split(".")
    real = jwt.decode(e.account.access_token, options={"verify_signature": False})
    return _bearer(f"{header}.{_b64({**real, 'roles': ['admin', 'user']})}.{signature}")


def _tampered_signature(e: Edge) -> Headers:
    header, payload, signature = e.account.access_token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return _bearer(f"{header}.{payload}.{flipped}")


def _other_tenant(e: Edge) -> Headers:
    return [*_bearer(e.account.access_token), ("X-Tenant-ID", f"other-{uuid.uuid4().hex[:6]}")]


def _revoked_after_logout(e: Edge) -> Headers:
    account = e.register()
    out = e.client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": account.refresh_token},
        headers=dict(_bearer(account.access_token)),
    )
    assert out.status_code == 200, out.text
    return _bearer(account.access_token)


def _issued_before_valid_after(e: Edge) -> Headers:
    account = e.register()
    time.sleep(1.1)  # JWT times are whole seconds: the mark must fall after the token's iat
    gone = e.client.delete(f"/api/v1/users/{account.user_id}", headers=dict(_bearer(account.access_token)))
    assert gone.status_code in (200, 204), gone.text
    return _bearer(account.access_token)


# The edge's own messages (a backend's are lower-case): each refusal happened before any backend call.
INVALID = "Invalid or expired token"
MISSING = "Missing bearer token"
REVOKED = "Token has been revoked"
TENANT = "X-Tenant-ID does not match the token"
Row = tuple[Callable[[Edge], Headers], int, str]

ATTACKS: dict[str, Row] = {
    "alg-none": (_alg_none, 401, INVALID),
    "hs256-with-public-key": (_hs256_with_public_key, 401, INVALID),
    "unknown-kid": (_unknown_kid, 401, INVALID),
    "foreign-key-with-real-kid": (_own_key_with_real_kid, 401, INVALID),
    "wrong-iss": (lambda e: _bearer(e.forge(iss="someone-else")), 401, INVALID),
    "wrong-aud": (lambda e: _bearer(e.forge(aud="other-api")), 401, INVALID),
    "wrong-typ-jwt": (lambda e: _bearer(e.sign(e.claims(), typ="JWT")), 401, INVALID),
    "refresh-typ": (lambda e: _bearer(e.sign(e.claims(), typ="rt+jwt")), 401, INVALID),
    "expired-beyond-leeway": (lambda e: _bearer(e.forge(exp=int(time.time()) - LEEWAY - 30)), 401, INVALID),
    "nbf-in-the-future": (lambda e: _bearer(e.forge(nbf=int(time.time()) + LEEWAY + 600)), 401, INVALID),
    "missing-exp": (lambda e: _bearer(e.forge(exp=None)), 401, INVALID),
    # NumericDate claims are JSON numbers: a digit string or a bool is no time, however int() reads it.
    "exp-as-a-string": (lambda e: _bearer(e.forge(exp="9999999999")), 401, INVALID),
    "iat-as-a-bool": (lambda e: _bearer(e.forge(iat=True)), 401, INVALID),
    "exp-beyond-a-float": (lambda e: _bearer(e.forge(exp=10**400)), 401, INVALID),
    "missing-jti": (lambda e: _bearer(e.forge(jti=None)), 401, INVALID),
    "tampered-payload": (_tampered_payload, 401, INVALID),
    "tampered-signature": (_tampered_signature, 401, INVALID),
    "tenant-header-mismatch": (_other_tenant, 403, TENANT),
    "revoked-jti-after-logout": (_revoked_after_logout, 401, REVOKED),
    "issued-before-valid-after": (_issued_before_valid_after, 401, REVOKED),
    "garbage": (lambda e: [("Authorization", "Bearer garbage")], 401, INVALID),
    "three-garbage-segments": (lambda e: _bearer("a.b.c"), 401, INVALID),
    "empty-header": (lambda e: [("Authorization", "")], 401, MISSING),
    "scheme-only": (lambda e: [("Authorization", "Bearer")], 401, MISSING),
    "basic-scheme": (
        lambda e: [("Authorization", f"Basic {base64.b64encode(b'a:b').decode()}")],
        401,
        MISSING,
    ),
    "token-without-scheme": (lambda e: [("Authorization", e.account.access_token)], 401, MISSING),
    "no-header": (lambda e: [], 401, MISSING),
    "huge-validly-signed-token": (lambda e: _bearer(e.forge(pad="x" * 20_000)), 401, INVALID),
    "huge-garbage-token": (lambda e: _bearer("a" * 60_000), 401, INVALID),
    # Two of a header are ambiguous (which one would a proxy or the backend read?): refused, not picked.
    "two-authorization-headers": (
        lambda e: [*_bearer(e.account.access_token), *_bearer(e.forge(sub="someone-else"))],
        400,
        "Send exactly one Authorization header",
    ),
    "two-tenant-headers": (
        lambda e: [
            *_bearer(e.account.access_token),
            ("X-Tenant-ID", e.account.tenant),
            ("X-Tenant-ID", "other-tenant"),
        ],
        400,
        "Send at most one X-Tenant-ID header",
    ),
}
CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN"}


@pytest.mark.parametrize("case", list(ATTACKS), ids=list(ATTACKS))
def test_attack_is_refused_at_the_edge(edge: Edge, case: str) -> None:
    build, status, message = ATTACKS[case]
    request_id = f"atk-{case}"[:64]
    response = edge.client.get(ME, headers=[*build(edge), ("X-Request-ID", request_id)])
    assert response.status_code == status, response.text
    assert response.json() == {
        "error": {
            "code": CODES[status],
            "message": message,
            "status_code": status,
            "request_id": request_id,
        }
    }
    challenge = response.headers.get("www-authenticate", "")
    if case == "no-header":  # RFC 6750 §3.1: no credentials sent, so no error code in the challenge
        assert challenge == 'Bearer realm="portico"'
    elif status == 401:
        assert challenge.startswith('Bearer realm="portico", error="invalid_')
    elif case == "two-authorization-headers":
        assert challenge == 'Bearer realm="portico", error="invalid_request"'


# ---- controls: the same forger's honest tokens pass, so each refusal above is about its one defect ---

CONTROLS: dict[str, Callable[[Edge], Headers]] = {
    "real-token": lambda e: _bearer(e.account.access_token),
    "forged-honest-token": lambda e: _bearer(e.forge()),
    "expired-within-leeway": lambda e: _bearer(e.forge(exp=int(time.time()) - LEEWAY // 3)),
    "lowercase-bearer-scheme": lambda e: [("Authorization", f"bearer {e.account.access_token}")],
    "uppercase-bearer-scheme": lambda e: [("Authorization", f"BEARER {e.account.access_token}")],
    "matching-tenant-header": lambda e: [*_bearer(e.account.access_token), ("X-Tenant-ID", e.account.tenant)],
}


@pytest.mark.parametrize("case", list(CONTROLS), ids=list(CONTROLS))
def test_honest_credentials_pass(edge: Edge, case: str) -> None:
    response = edge.client.get(ME, headers=CONTROLS[case](edge))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == edge.account.user_id
