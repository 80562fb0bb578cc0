"""Issuing access tokens: RFC 9068 JWTs (``typ: at+jwt``) signed by the ring's current key.

The claims are the ones ``meshkit.auth.tokens.TokenVerifier`` requires, plus ``email`` and ``nbf``, plus
``sid`` when the token belongs to a login (the kit revokes a whole login by it). Nothing else: a claim
is a promise to every verifier.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from backends.auth.keys import SigningKey
from backends.auth.keys.state import as_utc
from meshkit.auth.tokens import ACCESS_TOKEN_TYPE

SERVICE_SUBJECT = "service:auth"
SERVICE_ROLE = "service"
SERVICE_TOKEN_TTL = 60
# Seconds a service token is reused for: the last call made with it still has half its lifetime left,
# far more than any call's deadline or the clock skew its verifier allows.
SERVICE_TOKEN_REUSE = timedelta(seconds=SERVICE_TOKEN_TTL / 2)
_MAX_CACHED_TENANTS = 1024  # a bound on the cache; registrations can name any tenant


@dataclass(frozen=True)
class IssuedToken:
    token: str = field(repr=False)  # a bearer credential: kept out of reprs, hence out of logs
    jti: str
    issued_at: datetime
    expires_at: datetime


def issue_access_token(
    key: SigningKey,
    *,
    sub: str,
    tenant_id: str,
    email: str,
    roles: Sequence[str],
    ttl_seconds: int,
    issuer: str,
    audience: str,
    now: datetime,
    session_id: str | None = None,
) -> IssuedToken:
    """A token for ``sub`` valid ``ttl_seconds`` from ``now`` (whole seconds, as JWT times are)."""
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    if isinstance(roles, str):  # a str is a Sequence[str]: "admin" would become ["a", "d", …]
        raise TypeError("roles must be a sequence of role names, not a string")
    iat = int(as_utc(now).timestamp())
    exp = iat + ttl_seconds
    jti = uuid.uuid4().hex
    claims: dict[str, Any] = {
        "sub": sub,
        "tenant_id": tenant_id,
        "email": email,
        "roles": list(roles),
        "jti": jti,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "iss": issuer,
        "aud": audience,
    }
    if session_id:
        claims["sid"] = session_id
    token = jwt.encode(
        claims,
        key.private_key,
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
    )
    return IssuedToken(
        token=token,
        jti=jti,
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
    )


def issue_service_token(
    key: SigningKey,
    *,
    tenant_id: str,
    ttl_seconds: int = SERVICE_TOKEN_TTL,
    issuer: str,
    audience: str,
    now: datetime,
) -> IssuedToken:
    """The auth backend's own credential for one call to the users backend, inside one tenant."""
    return issue_access_token(
        key,
        sub=SERVICE_SUBJECT,
        tenant_id=tenant_id,
        email="",
        roles=(SERVICE_ROLE,),
        ttl_seconds=ttl_seconds,
        issuer=issuer,
        audience=audience,
        now=now,
    )


class ServiceTokens:
    """The auth backend's service token of each tenant, reused for ``SERVICE_TOKEN_REUSE``.

    A login or refresh asks the users backend about the user each time; signing a token for every such
    call was CPU for nothing, and a token the users backend has seen it verifies from its cache. A new
    signing key (a rotation) takes over at once: a token is only reused while its key still signs.
    """

    def __init__(self, *, issuer: str, audience: str) -> None:
        self._issuer = issuer
        self._audience = audience
        self._tokens: dict[str, tuple[str, IssuedToken]] = {}  # tenant -> (kid, token)

    def token(self, key: SigningKey, tenant_id: str, now: datetime) -> str:
        cached = self._tokens.get(tenant_id)
        if cached is not None:
            kid, issued = cached
            # A clock set back must not reuse a token whose nbf is still ahead of it.
            if kid == key.kid and issued.issued_at <= now < issued.issued_at + SERVICE_TOKEN_REUSE:
                return issued.token
        if len(self._tokens) >= _MAX_CACHED_TENANTS:
            self._tokens.clear()
        issued = issue_service_token(
            key, tenant_id=tenant_id, issuer=self._issuer, audience=self._audience, now=now
        )
        self._tokens[tenant_id] = (key.kid, issued)
        return issued.token
