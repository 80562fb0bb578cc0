"""Self-contained tokens at the EDGE (ASVS 5 V9): every forged, stale, revoked, mistyped or malformed
credential is refused by the real gateway (session mesh) with 401/403 in the contract's envelope, 401s
with ``WWW-Authenticate``.

Forgeries that need a trusted signature are signed with the mesh auth backend's own current key
(``harness.forgery``), so each row isolates exactly one defect; the control rows show the same forger's
honest token is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness.forgery import Forger
from harness.mesh import Mesh
from tests.security.envelope import assert_error
from tests.security.network import fresh_address
from tests.security.people import Person, bearer, sign_up

pytestmark = pytest.mark.infra
ME = "/api/v1/users/me"
LEEWAY = 30  # PORTICO_JWT_LEEWAY's default, which the mesh runs with
Headers = list[tuple[str, str]]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class Edge:
    """What the rows need: a client on the gateway, a registered user, and the forger of the mesh key."""

    client: httpx.Client
    account: Person
    forger: Forger

    def claims(self, **changes: Any) -> dict[str, Any]:
        """The account's real claims with a fresh jti; ``changes`` override, a None value removes."""
        return self.forger.claims_like(self.account.access_token, **changes)

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return self.forger.sign(claims, **header)

    def forge(self, **changes: Any) -> str:
        return self.sign(self.claims(**changes))


@pytest.fixture(scope="module")
def edge(mesh: Mesh, forger: Forger) -> Iterator[Edge]:
    transport = httpx.HTTPTransport(local_address=fresh_address())
    with httpx.Client(base_url=mesh.gateway_url, timeout=15, transport=transport) as client:
        account = sign_up(client)
        assert jwt.get_unverified_header(account.access_token)["kid"] == forger.kid
        yield Edge(client, account, forger)


def _bearer(token: str) -> Headers:
    return [("Authorization", f"Bearer {token}")]


def _public_x(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# ---- the rows: each builds the request headers, possibly after a real flow (logout, delete) --------


def _alg_none(e: Edge, alg: str = "none") -> Headers:
    header = _b64({"alg": alg, "typ": "at+jwt", "kid": e.forger.kid})
    return _bearer(f"{header}.{_b64(e.claims())}.")


def _hs256_with_public_key(e: Edge) -> Headers:
    # The classic confusion: HMAC keyed with the public key everyone can fetch. PyJWT refuses to HMAC with
    # a key that looks like a public key, so the signature is made by hand.
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': e.forger.kid})}.{_b64(e.claims())}"
    digest = hmac.new(e.forger.key.x.encode(), signing_input.encode(), hashlib.sha256).digest()
    return _bearer(f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}")


def _alg_header_swapped(e: Edge) -> Headers:
    # A real EdDSA signature under a header that claims ES256: the verifier must use the key's algorithm.
    _, payload, signature = e.forge().split(".")
    return _bearer(f"{_b64({'alg': 'ES256', 'typ': 'at+jwt', 'kid': e.forger.kid})}.{payload}.{signature}")


def _foreign_key(e: Edge, **header: Any) -> Headers:
    """Signed with the attacker's own key; ``header`` says where to find it (or claims the real kid)."""
    return _bearer(jwt.encode(e.claims(), Ed25519PrivateKey.generate(), "EdDSA", {"typ": "at+jwt", **header}))


def _embedded_jwk(e: Edge) -> Headers:
    # The header carries the attacker's public key (RFC 7515 "jwk"): a verifier must never trust it.
    key = Ed25519PrivateKey.generate()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _public_x(key)}
    return _bearer(jwt.encode(e.claims(), key, "EdDSA", {"typ": "at+jwt", "kid": e.forger.kid, "jwk": jwk}))


def _tampered_payload(e: Edge) -> Headers:
    header, _, signature = e.account.access_token.split(".")
    real = jwt.decode(e.account.access_token, options={"verify_signature": False})
    return _bearer(f"{header}.{_b64({**real, 'roles': ['admin', 'user']})}.{signature}")


def _tampered_signature(e: Edge) -> Headers:
    header, payload, signature = e.account.access_token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return _bearer(f"{header}.{payload}.{flipped}")


def _other_tenant(e: Edge) -> Headers:
    return [*_bearer(e.account.access_token), ("X-Tenant-ID", f"other-{e.account.tenant}")]


def _revoked_after_logout(e: Edge) -> Headers:
    account = sign_up(e.client)
    out = e.client.post(
        "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}, headers=account.auth
    )
    assert out.status_code == 200, out.text
    return _bearer(account.access_token)


def _issued_before_valid_after(e: Edge) -> Headers:
    account = sign_up(e.client)
    time.sleep(1.1)  # JWT times are whole seconds: the mark must fall after the token's iat
    gone = e.client.delete(f"/api/v1/users/{account.user_id}", headers=account.auth)
    assert gone.status_code == 200, gone.text
    return _bearer(account.access_token)


def _now() -> int:
    return int(time.time())


# The edge's own messages (a backend's are lower-case): each refusal happened before any backend call.
INVALID = "Invalid or expired token"
MISSING = "Missing bearer token"
REVOKED = "Token has been revoked"
TENANT = "X-Tenant-ID does not match the token"
Row = tuple[Callable[[Edge], Headers], int, str]

ATTACKS: dict[str, Row] = {
    # Algorithm confusion and signatures.
    "alg-none": (_alg_none, 401, INVALID),
    "alg-None-capitalised": (lambda e: _alg_none(e, "None"), 401, INVALID),
    "hs256-with-public-key": (_hs256_with_public_key, 401, INVALID),
    "alg-header-swapped-to-es256": (_alg_header_swapped, 401, INVALID),
    "tampered-payload": (_tampered_payload, 401, INVALID),
    "tampered-signature": (_tampered_signature, 401, INVALID),
    # Where the key comes from: only auth's published keys, by kid.
    "unknown-kid": (lambda e: _foreign_key(e, kid="k-unknown"), 401, INVALID),
    "foreign-key-with-real-kid": (lambda e: _foreign_key(e, kid=e.forger.kid), 401, INVALID),
    "embedded-jwk-header": (_embedded_jwk, 401, INVALID),
    "jku-header-to-attacker-keys": (
        lambda e: _foreign_key(e, kid="attacker", jku="http://127.0.0.1:9/jwks.json"),
        401,
        INVALID,
    ),
    "kid-path-traversal": (lambda e: _bearer(e.sign(e.claims(), kid="../../../../etc/passwd")), 401, INVALID),
    "kid-sql-injection": (lambda e: _bearer(e.sign(e.claims(), kid="' OR '1'='1")), 401, INVALID),
    "no-kid": (lambda e: _bearer(e.sign(e.claims(), kid=None)), 401, INVALID),
    "crit-unknown-extension": (
        lambda e: _bearer(e.sign(e.claims(), crit=["x-portico"], **{"x-portico": True})),
        401,
        INVALID,
    ),
    # Issuer, audience and type.
    "wrong-iss": (lambda e: _bearer(e.forge(iss="someone-else")), 401, INVALID),
    "wrong-aud": (lambda e: _bearer(e.forge(aud="other-api")), 401, INVALID),
    "wrong-typ-jwt": (lambda e: _bearer(e.sign(e.claims(), typ="JWT")), 401, INVALID),
    "refresh-typ": (lambda e: _bearer(e.sign(e.claims(), typ="rt+jwt")), 401, INVALID),
    "no-typ": (lambda e: _bearer(e.sign(e.claims(), typ="")), 401, INVALID),
    # Times.
    "expired-beyond-leeway": (lambda e: _bearer(e.forge(exp=_now() - LEEWAY - 30)), 401, INVALID),
    "nbf-in-the-future": (lambda e: _bearer(e.forge(nbf=_now() + LEEWAY + 600)), 401, INVALID),
    "iat-in-the-future": (lambda e: _bearer(e.forge(iat=_now() + LEEWAY + 600)), 401, INVALID),
    "missing-exp": (lambda e: _bearer(e.forge(exp=None)), 401, INVALID),
    # Claim types (RFC 7519: NumericDate is a number; finding 7 is exp as a string).
    "exp-as-string": (lambda e: _bearer(e.forge(exp="9999999999")), 401, INVALID),
    "nbf-as-string": (lambda e: _bearer(e.forge(nbf=str(_now()))), 401, INVALID),
    "iat-as-string": (lambda e: _bearer(e.forge(iat=str(_now()))), 401, INVALID),
    "exp-as-boolean": (lambda e: _bearer(e.forge(exp=True)), 401, INVALID),
    "roles-as-string": (lambda e: _bearer(e.forge(roles="admin")), 401, INVALID),
    "sub-as-number": (lambda e: _bearer(e.forge(sub=12345)), 401, INVALID),
    "iat-as-a-bool": (lambda e: _bearer(e.forge(iat=True)), 401, INVALID),
    "exp-beyond-a-float": (lambda e: _bearer(e.forge(exp=10**400)), 401, INVALID),
    "missing-jti": (lambda e: _bearer(e.forge(jti=None)), 401, INVALID),
    # Tenant and revocation.
    "tenant-header-mismatch": (_other_tenant, 403, TENANT),
    "revoked-jti-after-logout": (_revoked_after_logout, 401, REVOKED),
    "issued-before-valid-after": (_issued_before_valid_after, 401, REVOKED),
    # Malformed and missing credentials.
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
    "refresh-token-as-bearer": (lambda e: _bearer(e.account.refresh_token), 401, INVALID),
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


@pytest.mark.parametrize("case", list(ATTACKS), ids=list(ATTACKS))
def test_attack_is_refused_at_the_edge(edge: Edge, case: str) -> None:
    build, status, message = ATTACKS[case]
    request_id = f"atk-{case}"[:64]
    response = edge.client.get(ME, headers=[*build(edge), ("X-Request-ID", request_id)])
    assert_error(response, status, message)
    assert response.json()["error"]["request_id"] == request_id
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
    "expired-within-leeway": lambda e: _bearer(e.forge(exp=_now() - LEEWAY // 3)),
    "audience-list-with-ours": lambda e: _bearer(e.forge(aud=["portico", "another-api"])),
    "lowercase-bearer-scheme": lambda e: [("Authorization", f"bearer {e.account.access_token}")],
    "uppercase-bearer-scheme": lambda e: [("Authorization", f"BEARER {e.account.access_token}")],
    "matching-tenant-header": lambda e: [*_bearer(e.account.access_token), ("X-Tenant-ID", e.account.tenant)],
}


@pytest.mark.parametrize("case", list(CONTROLS), ids=list(CONTROLS))
def test_honest_credentials_pass(edge: Edge, case: str) -> None:
    response = edge.client.get(ME, headers=CONTROLS[case](edge))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == edge.account.user_id


def test_a_forged_admin_role_gains_nothing(edge: Edge) -> None:
    """A token whose roles were raised but whose signature is the real one's is refused (tampered), and
    a real user token cannot reach an admin route."""
    create = {"username": "by-forgery", "email": "forged@example.com"}
    user_token = edge.client.post("/api/v1/users", json=create, headers=bearer(edge.account.access_token))
    assert_error(user_token, 403, "Not allowed")
    tampered = edge.client.post("/api/v1/users", json=create, headers=dict(_tampered_payload(edge)))
    assert_error(tampered, 401, INVALID)
