"""How access tokens are verified, the same in the gateway and every backend (mesh-wide ``PORTICO_*``)."""

from __future__ import annotations

from meshkit.config.base import MeshSettings, env


class TokenSettings(MeshSettings):
    """Checks applied to every access token: issuer, audience, clock skew, key cache and revocations."""

    jwt_issuer: str = env(
        "PORTICO_JWT_ISSUER", default="portico-auth", description="Issuer (iss) access tokens must carry"
    )
    jwt_audience: str = env(
        "PORTICO_JWT_AUDIENCE", default="portico", description="Audience (aud) access tokens must carry"
    )
    jwt_leeway: float = env(
        "PORTICO_JWT_LEEWAY", default=30.0, description="Clock skew in seconds allowed on exp, nbf and iat"
    )
    jwks_cache_seconds: float = env(
        "PORTICO_JWKS_CACHE_SECONDS",
        default=300.0,
        description="Seconds the token-signing public keys (JWKS) are cached before they are fetched again",
    )
    jwks_refetch_cooldown: float = env(
        "PORTICO_JWKS_REFETCH_COOLDOWN",
        default=10.0,
        description="Minimum seconds between JWKS fetches triggered by an unknown key id",
    )
    revocation_fail_open: bool = env(
        "PORTICO_REVOCATION_FAIL_OPEN",
        default=False,
        description=(
            "Accept tokens when neither Redis nor the in-process revocation set (not loaded yet) can say "
            "whether they are revoked; off: such calls answer 503 UNAVAILABLE"
        ),
    )
