"""Token verification against a JWKS served over gRPC: valid tokens pass, every forgery fails."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import jwt
import pytest

from harness.tokens import AUDIENCE, ISSUER, TokenIssuer
from meshkit.auth.keys import JwksClient
from meshkit.auth.tokens import InvalidToken, TokenVerifier, jwk_thumbprint


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    running = TokenIssuer().start()
    yield running
    running.stop()


@pytest.fixture
async def verifier(issuer: TokenIssuer) -> AsyncIterator[TokenVerifier]:
    async with grpc.aio.insecure_channel(issuer.target) as channel:
        jwks = JwksClient(channel, cache_seconds=300, refetch_cooldown=0.2)
        yield TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, leeway=5)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_a_valid_token_gives_the_principal(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.token("u-1", "acme", ("admin", "user"), email="a@acme.test")
    principal = await verifier.verify(token)
    assert (principal.sub, principal.tenant_id, principal.email) == ("u-1", "acme", "a@acme.test")
    assert principal.roles == frozenset({"admin", "user"})
    assert principal.token == token


def _forgeries(issuer: TokenIssuer) -> dict[str, str]:
    good = issuer.token("u-1")
    header, payload, _ = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    public_x = issuer.published[0]["x"]
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': issuer.kid})}.{payload}.",
        # The classic confusion attack: HMAC keyed with the public key's bytes.
        "hs256 with the public key": jwt.encode(
            claims, public_x.encode(), algorithm="HS256", headers={"kid": issuer.kid, "typ": "at+jwt"}
        ),
        "tampered payload": f"{header}.{_b64({**claims, 'roles': ['admin']})}.{good.split('.')[2]}",
        "expired": issuer.token("u-1", exp=int(time.time()) - 60),
        "not yet valid": issuer.token("u-1", nbf=int(time.time()) + 600),
        "wrong issuer": issuer.token("u-1", iss="someone-else"),
        "wrong audience": issuer.token("u-1", aud="other-api"),
        "wrong typ": issuer.token("u-1", headers={"typ": "JWT"}),
        "refresh-like typ": issuer.token("u-1", headers={"typ": "rt+jwt"}),
        "no jti": issuer.token("u-1", jti=None),
        "no tenant": issuer.token("u-1", tenant_id=None),
        "roles not a list": issuer.sign({**claims, "roles": "admin"}),
        "unknown kid": issuer.token("u-1", kid=issuer.add_key(publish=False)),
        "garbage": "not.a.token",
        "empty": "",
    }


@pytest.mark.parametrize(
    "case",
    [
        "alg none",
        "hs256 with the public key",
        "tampered payload",
        "expired",
        "not yet valid",
        "wrong issuer",
        "wrong audience",
        "wrong typ",
        "refresh-like typ",
        "no jti",
        "no tenant",
        "roles not a list",
        "unknown kid",
        "garbage",
        "empty",
    ],
)
async def test_forgeries_are_rejected(issuer: TokenIssuer, verifier: TokenVerifier, case: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(_forgeries(issuer)[case])


async def test_a_rotated_key_is_fetched_on_first_sight(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    await verifier.verify(issuer.token("u-1"))  # warms the cache with the current key
    new_kid = issuer.add_key(publish=True)
    await asyncio.sleep(0.3)  # past the fixture's 0.2 s refetch cool-down
    principal = await verifier.verify(issuer.token("u-2", kid=new_kid))
    assert principal.sub == "u-2"


async def test_unknown_kids_do_not_flood_the_jwks_endpoint(issuer: TokenIssuer) -> None:
    calls = 0
    async with grpc.aio.insecure_channel(issuer.target) as channel:
        jwks = JwksClient(channel, cache_seconds=300, refetch_cooldown=60)
        original = jwks._fetch

        async def counting_fetch() -> None:
            nonlocal calls
            calls += 1
            await original()

        jwks._fetch = counting_fetch  # type: ignore[method-assign]
        for _ in range(50):
            assert await jwks.key("forged-kid") is None
    assert calls == 1


def test_thumbprint_matches_rfc_7638_example() -> None:
    # RFC 7638 section 3.1: the RSA example's thumbprint; OKP/EC use the same canonical form.
    okp = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    # RFC 8037 appendix A.3 gives this key's thumbprint.
    assert jwk_thumbprint(okp) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def _with(issuer: TokenIssuer, **claims: object) -> str:
    """A token signed by the issuer: the usual claims, with ``claims`` set as given (None is JSON null)."""
    base = jwt.decode(issuer.token("u-1"), options={"verify_signature": False})
    return issuer.sign({**base, **claims})


def _time_values(claim: str, now: int) -> dict[str, object]:
    """Values of a NumericDate claim that are not one. The strings and bools are times int() reads as
    valid (PyJWT's own check), so only the type is wrong."""
    valid = now + 300 if claim == "exp" else now - 60
    return {
        "digit string": str(valid),
        "far-future digit string": "9999999999",
        "true": True,  # int(True) is 1: long expired, but a valid nbf/iat
        "false": False,
        "null": None,
        "beyond the year 9999": 10**30,
        "beyond a float": 10**400,
        "infinity": float("inf"),
        "nan": float("nan"),
        "negative": -1,
        "list": [valid],
    }


TIME_CASES = [(claim, case) for claim in ("exp", "nbf", "iat") for case in _time_values(claim, 0)]


@pytest.mark.parametrize(("claim", "case"), TIME_CASES, ids=[f"{c}-{k}" for c, k in TIME_CASES])
async def test_a_time_claim_that_is_not_a_numeric_date_is_refused(
    issuer: TokenIssuer, verifier: TokenVerifier, claim: str, case: str
) -> None:
    value = _time_values(claim, int(time.time()))[case]
    with pytest.raises(InvalidToken):
        await verifier.verify(_with(issuer, **{claim: value}))


async def test_fractional_times_are_numeric_dates(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    now = time.time()
    principal = await verifier.verify(_with(issuer, iat=now - 0.25, nbf=now - 0.5, exp=now + 300.5))
    assert principal.expires_at == pytest.approx(now + 300.5)
    assert principal.issued_at == pytest.approx(now - 0.25)


ID_CASES = [(claim, value) for claim in ("sub", "tenant_id", "jti") for value in ("", 12345, None, ["x"])]


@pytest.mark.parametrize(("claim", "value"), ID_CASES, ids=[f"{c}-{v!r}" for c, v in ID_CASES])
async def test_an_id_claim_that_is_not_a_non_empty_string_is_refused(
    issuer: TokenIssuer, verifier: TokenVerifier, claim: str, value: object
) -> None:
    """An empty id names nobody, and a revocation keyed on it would be keyed on nothing."""
    with pytest.raises(InvalidToken):
        await verifier.verify(_with(issuer, **{claim: value}))
