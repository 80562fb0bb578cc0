"""Tokens signed with a running mesh's own auth key, for the attack tests.

A forgery that needs a trusted signature is made with the very key the mesh's auth backend signs with
(read from its key directory, as the backend reads it), so each forged token differs from a real one in
exactly the defect under test; an honest token from the same forger is accepted, which proves it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import jwt

from backends.auth.access_tokens import issue_access_token, issue_service_token
from backends.auth.config import AuthSettings
from backends.auth.keys import KeyRing, SigningKey
from meshkit.auth.tokens import ACCESS_TOKEN_TYPE


@dataclass(frozen=True)
class Forger:
    key: SigningKey
    issuer: str
    audience: str

    @classmethod
    def of_mesh(cls, env: Mapping[str, str]) -> Forger:
        """The current signing key of the auth backend started with ``env`` (its settings, read as it
        reads them)."""
        with mock.patch.dict(os.environ, env):
            settings = AuthSettings()
        secret = settings.keys_passphrase
        ring = KeyRing.load(settings.keys_dir, secret.get_secret_value().encode() if secret else None)
        return cls(ring.signing_key(datetime.now(UTC)), settings.jwt_issuer, settings.jwt_audience)

    @property
    def kid(self) -> str:
        return self.key.kid

    def sign(self, claims: Mapping[str, Any], **header: Any) -> str:
        """``claims`` signed with the mesh key; ``header`` overrides the real header's members (a None
        value removes one; ``typ=""`` leaves the type out)."""
        merged = {"kid": self.key.kid, "typ": ACCESS_TOKEN_TYPE, **header}
        headers = {name: value for name, value in merged.items() if value is not None}
        return jwt.encode(dict(claims), self.key.private_key, algorithm=self.key.algorithm, headers=headers)

    @staticmethod
    def claims_like(token: str, **changes: Any) -> dict[str, Any]:
        """The claims of ``token`` with a fresh jti and times; ``changes`` override, a None value removes."""
        real = jwt.decode(token, options={"verify_signature": False})
        now = int(time.time())
        claims = {**real, "jti": uuid.uuid4().hex, "iat": now, "nbf": now, "exp": now + 300, **changes}
        return {name: value for name, value in claims.items() if value is not None}

    def forge(self, token: str, **changes: Any) -> str:
        """A token like ``token`` with ``changes``, signed with the mesh key."""
        return self.sign(self.claims_like(token, **changes))

    def access_token(self, sub: str, tenant_id: str, roles: Sequence[str], email: str = "") -> str:
        """What auth would issue to user ``sub`` (without a login session)."""
        return issue_access_token(
            self.key,
            sub=sub,
            tenant_id=tenant_id,
            email=email,
            roles=roles,
            ttl_seconds=600,
            issuer=self.issuer,
            audience=self.audience,
            now=datetime.now(UTC),
        ).token

    def service_token(self, tenant_id: str) -> str:
        """Auth's own credential for a call to the users backend (role ``service``)."""
        return issue_service_token(
            self.key, tenant_id=tenant_id, issuer=self.issuer, audience=self.audience, now=datetime.now(UTC)
        ).token
