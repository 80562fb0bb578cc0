"""Access tokens for tests, signed with a test Ed25519 key published like the auth backend publishes
its keys: a real gRPC server answering ``auth.v1.AuthService/GetJwks`` (and health).

Backends under test point ``PORTICO_JWKS_TARGET`` at it and verify tokens exactly as in production.
"""

from __future__ import annotations

import base64
import time
import uuid
from concurrent import futures
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from infra.procs import free_port
from meshkit.auth.tokens import jwk_thumbprint
from meshkit.rpc.health import READINESS
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc

ISSUER = "portico-auth"
AUDIENCE = "portico"


class _Jwks(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, issuer: TokenIssuer) -> None:
        self._issuer = issuer

    def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Any) -> auth_pb2.GetJwksResponse:
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.Jwk(**jwk) for jwk in self._issuer.published])


class TokenIssuer:
    def __init__(self) -> None:
        self.published: list[dict[str, str]] = []
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self.kid = self.add_key(publish=True)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        # Only GetJwks is served; the other RPCs stay the generated UNIMPLEMENTED ones.
        auth_pb2_grpc.add_AuthServiceServicer_to_server(_Jwks(self), self._server)  # type: ignore[abstract]
        health_servicer = health.HealthServicer()
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        # As a kit backend: the kit's balanced channels send calls only where READINESS is SERVING.
        health_servicer.set(READINESS, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, self._server)
        self.port = free_port()
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.target = f"127.0.0.1:{self.port}"

    def add_key(self, *, publish: bool) -> str:
        """A new signing key; returns its kid (published in the JWKS only when ``publish``)."""
        key = Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}
        kid = jwk_thumbprint(jwk)
        self._keys[kid] = key
        if publish:
            self.published.append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return kid

    def start(self) -> TokenIssuer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def token(
        self,
        sub: str,
        tenant_id: str = "default",
        roles: tuple[str, ...] = ("user",),
        *,
        email: str = "",
        ttl: int = 600,
        kid: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token; ``claims`` override or remove (value None) the standard ones."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": sub,
            "tenant_id": tenant_id,
            "email": email,
            "roles": list(roles),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return self.sign(payload, kid=kid, headers=headers)

    def sign(
        self, payload: dict[str, Any], *, kid: str | None = None, headers: dict[str, Any] | None = None
    ) -> str:
        """Sign any payload with one of the issuer's keys (for malformed-claim tests)."""
        kid = kid or self.kid
        header = {"kid": kid, "typ": "at+jwt", **(headers or {})}
        return jwt.encode(payload, self._keys[kid], algorithm="EdDSA", headers=header)
