"""Access and service tokens: exactly the header and claims of the contract, accepted by the kit's verifier
when it is fed the ring's JWKS."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backends.auth.access_tokens import IssuedToken, ServiceTokens, issue_access_token, issue_service_token
from backends.auth.keys import KeyRing
from meshkit.auth.keys import JwksClient
from meshkit.auth.tokens import Principal, TokenVerifier
from stubs.auth.v1 import auth_pb2

ISSUER, AUDIENCE = "portico-auth", "portico"


class _RingChannel:
    """Stands in for the channel to the auth backend: GetJwks answers the ring's set, through the wire
    format (serialized and parsed again) so the verifier sees what a real client would."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call(request: Any, timeout: float | None = None) -> auth_pb2.GetJwksResponse:
            assert method == "/auth.v1.AuthService/GetJwks"
            wire = self._ring.jwks(datetime.now(UTC)).SerializeToString()
            return auth_pb2.GetJwksResponse.FromString(wire)

        return call


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path, None, datetime.now(UTC))


async def _verify(ring: KeyRing, token: IssuedToken) -> Principal:
    jwks = JwksClient(_RingChannel(ring), cache_seconds=300)  # type: ignore[arg-type]
    return await TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE).verify(token.token)


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def decode(part: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return decoded

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


def _user_token(ring: KeyRing, now: datetime, **overrides: Any) -> IssuedToken:
    arguments: dict[str, Any] = {
        "sub": "0b9d6c1e-5f7a-4f51-9a55-3a3f7c1d2e4b",
        "tenant_id": "acme",
        "email": "ada@acme.test",
        "roles": ("user", "admin"),
        "ttl_seconds": 600,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "now": now,
        **overrides,
    }
    return issue_access_token(ring.signing_key(now), **arguments)


async def test_an_access_token_has_exactly_the_contract_claims(ring: KeyRing) -> None:
    now = datetime.now(UTC)
    issued = _user_token(ring, now)

    header, claims = _parts(issued.token)
    assert header == {"alg": "EdDSA", "kid": ring.signing_key(now).kid, "typ": "at+jwt"}
    iat = int(now.timestamp())
    assert claims == {
        "sub": "0b9d6c1e-5f7a-4f51-9a55-3a3f7c1d2e4b",
        "tenant_id": "acme",
        "email": "ada@acme.test",
        "roles": ["user", "admin"],
        "jti": issued.jti,
        "iat": iat,
        "nbf": iat,
        "exp": iat + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    assert len(issued.jti) == 32
    int(issued.jti, 16)  # uuid4 hex
    assert issued.issued_at == datetime.fromtimestamp(iat, UTC)
    assert issued.expires_at - issued.issued_at == timedelta(seconds=600)


async def test_the_kit_verifier_accepts_it(ring: KeyRing) -> None:
    issued = _user_token(ring, datetime.now(UTC))
    principal = await _verify(ring, issued)
    assert (principal.sub, principal.tenant_id, principal.email) == (
        "0b9d6c1e-5f7a-4f51-9a55-3a3f7c1d2e4b",
        "acme",
        "ada@acme.test",
    )
    assert principal.roles == frozenset({"user", "admin"})
    assert principal.jti == issued.jti
    assert principal.expires_at == issued.expires_at.timestamp()
    assert principal.session_id == ""


async def test_a_login_token_carries_its_session(ring: KeyRing) -> None:
    issued = _user_token(ring, datetime.now(UTC), session_id="family-1")
    assert _parts(issued.token)[1]["sid"] == "family-1"
    assert (await _verify(ring, issued)).session_id == "family-1"


async def test_every_token_has_its_own_jti(ring: KeyRing) -> None:
    now = datetime.now(UTC)
    assert len({_user_token(ring, now).jti for _ in range(20)}) == 20


async def test_a_service_token_speaks_for_the_auth_backend(ring: KeyRing) -> None:
    now = datetime.now(UTC)
    issued = issue_service_token(
        ring.signing_key(now), tenant_id="acme", issuer=ISSUER, audience=AUDIENCE, now=now
    )
    claims = _parts(issued.token)[1]
    assert (claims["sub"], claims["roles"], claims["tenant_id"], claims["email"]) == (
        "service:auth",
        ["service"],
        "acme",
        "",
    )
    assert claims["exp"] - claims["iat"] == 60
    principal = await _verify(ring, issued)
    assert principal.has_role("service")
    assert principal.sub == "service:auth"


def test_the_token_stays_out_of_reprs(ring: KeyRing) -> None:
    issued = _user_token(ring, datetime.now(UTC))
    assert issued.token not in repr(issued)
    assert issued.token.split(".")[2] not in repr(issued)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"ttl_seconds": 0}, ValueError),
        ({"roles": "admin"}, TypeError),
        ({"now": datetime(2030, 1, 1)}, ValueError),  # naive: refused
    ],
)
def test_bad_arguments_are_refused(ring: KeyRing, overrides: dict[str, Any], error: type[Exception]) -> None:
    key_time = datetime.now(UTC)
    arguments: dict[str, Any] = {
        "sub": "u",
        "tenant_id": "t",
        "email": "",
        "roles": ("user",),
        "ttl_seconds": 600,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "now": key_time,
        **overrides,
    }
    with pytest.raises(error):
        issue_access_token(ring.signing_key(key_time), **arguments)


def test_a_service_token_is_reused_for_half_its_lifetime_then_renewed(ring: KeyRing) -> None:
    tokens = ServiceTokens(issuer=ISSUER, audience=AUDIENCE)
    now = datetime.now(UTC)
    key = ring.signing_key(now)
    first = tokens.token(key, "acme", now)
    assert tokens.token(key, "acme", now + timedelta(seconds=29)) == first
    assert _parts(tokens.token(key, "globex", now))[1]["tenant_id"] == "globex"  # one per tenant
    renewed = tokens.token(key, "acme", now + timedelta(seconds=31))
    assert renewed != first
    claims = _parts(renewed)[1]
    assert claims["exp"] - int((now + timedelta(seconds=31)).timestamp()) == 60  # a full lifetime again
    # A clock set back does not reuse a token that is not valid yet.
    assert tokens.token(key, "acme", now) != renewed


def test_a_new_signing_key_takes_over_the_service_token_at_once(ring: KeyRing, tmp_path: Path) -> None:
    tokens = ServiceTokens(issuer=ISSUER, audience=AUDIENCE)
    now = datetime.now(UTC)
    first = tokens.token(ring.signing_key(now), "acme", now)
    other = KeyRing.load_or_create(tmp_path / "other", None, now).signing_key(now)
    second = tokens.token(other, "acme", now)
    assert second != first
    assert _parts(second)[0]["kid"] == other.kid
