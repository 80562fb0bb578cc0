"""Access-token verification: signature by a key from the JWKS, then every claim the contract names."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import jwt

from meshkit.auth.keys import JwksClient
from meshkit.auth.token_cache import VerifiedTokenCache

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a JWT "typ" value, not a secret)
REQUIRED_CLAIMS = ("sub", "tenant_id", "roles", "jti", "iat", "exp", "iss", "aud")
# Portico's access tokens are under 1 KB. A bigger one is refused before any decoding: it would cost
# base64 and JSON work, and even when validly signed it could not travel on as gRPC metadata (16 KB cap).
MAX_TOKEN_LENGTH = 8192
NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")
# 9999-12-31T23:59:59Z: a later time is none a token means, and no datetime could hold it downstream.
MAX_NUMERIC_DATE = 253_402_300_799


class InvalidToken(Exception):
    """The token cannot be trusted; the reason is for logs only, never for the caller."""


@dataclass(frozen=True)
class Principal:
    """The verified caller of an RPC."""

    sub: str
    tenant_id: str
    email: str
    roles: frozenset[str]
    jti: str
    issued_at: float
    expires_at: float
    token: str  # passed on to other backends when this one calls them
    session_id: str = ""  # the ``sid`` claim: the login (refresh-token family) the token belongs to

    def has_role(self, role: str) -> bool:
        return role in self.roles


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an OKP or EC public JWK: Portico's ``kid``."""
    members = ("crv", "kty", "x") if jwk["kty"] == "OKP" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def is_numeric_date(value: object) -> bool:
    """RFC 7519 §2 NumericDate: a JSON number (a bool is not one, nor a string of digits), finite,
    between the epoch and the year 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return 0 <= value <= MAX_NUMERIC_DATE  # compared as an int: 10**400 does not fit a float


class TokenVerifier:
    def __init__(
        self,
        jwks: JwksClient,
        *,
        issuer: str,
        audience: str,
        leeway: float = 30.0,
        cache: VerifiedTokenCache | None = None,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache = cache

    async def verify(self, token: str) -> Principal:
        """The token's principal; :class:`InvalidToken` when it cannot be trusted, and
        :class:`~meshkit.auth.keys.KeysUnavailable` when its key cannot be known right now.

        With a cache, a token verified before (and not expired) costs a digest and a key-set lookup:
        its key must still be in the key set, as for a token seen the first time."""
        if self._cache is None:
            return (await self._verify(token))[1]
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too large")  # not even hashed
        cached = self._cache.get(token)
        if cached is not None:
            if await self._jwks.key(cached.kid) is None:  # the key was removed from the set
                self._cache.discard(token)
                raise InvalidToken("unknown kid")
            return cached.principal
        kid, principal = await self._verify(token)
        self._cache.put(token, kid, principal)
        return principal

    async def _verify(self, token: str) -> tuple[str, Principal]:
        """The whole check: the key id the token was verified with, and its principal."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise InvalidToken("missing kid")
        key = await self._jwks.key(kid)
        if key is None:
            raise InvalidToken("unknown kid")
        if header.get("alg") != key.algorithm:
            raise InvalidToken("algorithm does not match the key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],  # only the key's own algorithm: no alg confusion
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        # PyJWT reads these with int(), so "9999999999" would pass as a time; a string is not a NumericDate.
        for name in NUMERIC_DATE_CLAIMS:
            if name in claims and not is_numeric_date(claims[name]):
                raise InvalidToken(f"{name} is not a NumericDate")
        roles = claims["roles"]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken("roles is not a list of strings")
        # Empty ids name nobody: a revocation mark keyed on an empty jti or sub would match every such token.
        if not all(isinstance(claims[name], str) and claims[name] for name in ("sub", "tenant_id", "jti")):
            raise InvalidToken("sub, tenant_id and jti must be non-empty strings")
        return kid, Principal(
            sub=claims["sub"],
            tenant_id=claims["tenant_id"],
            email=str(claims.get("email", "")),
            roles=frozenset(roles),
            jti=claims["jti"],
            issued_at=float(claims["iat"]),
            expires_at=float(claims["exp"]),
            token=token,
            session_id=str(claims.get("sid", "")),
        )
