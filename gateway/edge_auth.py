"""JWT at the edge: a route that is not public needs a valid, unrevoked access token before any backend
is called. The same verifier the backends use (kit): keys from the auth backend's JWKS, refetched on an
unknown ``kid`` with a cool-down, only the key's algorithm, ``exp``/``nbf`` with leeway, ``iss``, ``aud``,
``typ``; then the ``jti`` / session / "valid after" revocations: the in-process set here, then Redis's
marks, read in the request's one Redis round trip by :mod:`gateway.edge_gate` (503, never 401 or a pass,
when neither can answer).

Verified tokens are cached until they expire (signature and claims do not change; the verifier's
:class:`~meshkit.auth.token_cache.VerifiedTokenCache`, shared with the backends); revocation is asked
on every request, because a logout must take effect at once. A token whose key cannot be known (auth
unreachable and the kid not in the kept key set) is answered 503 with ``Retry-After``, never 401: a
client that signs its user out on 401 must not do so because of an outage.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshkit.auth.keys import KeysUnavailable
from meshkit.auth.revocation import RevocationChecker
from meshkit.auth.tokens import InvalidToken, Principal, TokenVerifier
from stubs.portico.gateway.v1 import options_pb2

# RFC 6750 §3: no error code when the request carried no credentials at all.
CHALLENGE_NO_CREDENTIALS = 'Bearer realm="portico"'
CHALLENGE_INVALID = 'Bearer realm="portico", error="invalid_token"'
CHALLENGE_BAD_REQUEST = 'Bearer realm="portico", error="invalid_request"'
CHALLENGE_SCOPE = 'Bearer realm="portico", error="insufficient_scope"'


@dataclass(frozen=True)
class Refusal:
    status: int  # 400, 401, 403, or 503 when the token or its revocations cannot be checked now
    message: str
    challenge: str | None = CHALLENGE_INVALID  # the WWW-Authenticate value, if any
    retry_after: int | None = None  # seconds, for a 503
    # The verified token refused for what it may do (403): its revocation is still read, a 401 comes first.
    principal: Principal | None = None

    def headers(self) -> dict[str, str]:
        found = {"WWW-Authenticate": self.challenge} if self.challenge else {}
        if self.retry_after is not None:
            found["Retry-After"] = str(self.retry_after)
        return found


REVOKED = Refusal(401, "Token has been revoked")
REVOCATIONS_UNKNOWN = Refusal(503, "Token revocations cannot be checked, please retry", None)


class EdgeAuth:
    def __init__(self, verifier: TokenVerifier, revocations: RevocationChecker) -> None:
        self._verifier = verifier
        self.revocations = revocations  # its in-process set is fed by the gateway's revocation feed

    async def check(
        self, policy: options_pb2.RoutePolicy, authorizations: list[str], tenant_headers: list[str]
    ) -> Principal | Refusal | None:
        """None for a public route; the principal when allowed; otherwise why not.

        Takes every Authorization and X-Tenant-ID header sent: two of either is ambiguous (a proxy or
        the client may read the other one), so it is refused rather than one picked.
        """
        if policy.access == options_pb2.ACCESS_PUBLIC:
            return None
        if len(authorizations) > 1:
            return Refusal(400, "Send exactly one Authorization header", CHALLENGE_BAD_REQUEST)
        if len(tenant_headers) > 1:
            return Refusal(400, "Send at most one X-Tenant-ID header", None)
        if not authorizations:
            return Refusal(401, "Missing bearer token", CHALLENGE_NO_CREDENTIALS)
        scheme, _, token = authorizations[0].partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Refusal(401, "Missing bearer token", CHALLENGE_BAD_REQUEST)
        try:
            principal = await self._verifier.verify(token)  # cached by token digest until exp
        except InvalidToken:
            return Refusal(401, "Invalid or expired token")
        except KeysUnavailable as exc:
            return Refusal(503, "Cannot verify tokens right now", None, exc.retry_after)
        if self.revocations.local.is_revoked(principal):
            return REVOKED  # Redis's marks are read with the rate limits (gateway.edge_gate)
        if tenant_headers and tenant_headers[0] != principal.tenant_id:
            return Refusal(403, "X-Tenant-ID does not match the token", None, principal=principal)
        if policy.required_roles and not principal.roles.intersection(policy.required_roles):
            return Refusal(403, "Not allowed", CHALLENGE_SCOPE, principal=principal)
        return principal
