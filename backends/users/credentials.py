"""The password of a user created with one: stored by the auth backend, which owns credentials.

CreateUser calls auth's CreateCredential once the profile is committed, with its caller's own token (auth
checks that caller again, and reads the user's names and roles from this backend, not from the call).
The password travels only in that call: never in an event, the outbox, a log line or an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc
from pydantic import SecretStr

from meshkit.auth.tokens import Principal
from meshkit.rpc.context import Context
from meshkit.rpc.forwarding import onward_metadata
from stubs.auth.v1 import auth_pb2

if TYPE_CHECKING:
    from stubs.auth.v1.auth_pb2_grpc import AuthServiceAsyncStub

log = logging.getLogger(__name__)

# Longest wait for auth: it hashes the password (argon2id), and the call's deadline must leave time to
# take the profile back when auth does not answer.
CREDENTIAL_TIMEOUT = 6.0
COMPENSATION_RESERVE = 1.5
# Statuses of auth passed on as they are: they describe the caller's input or rights.
_PASS_THROUGH = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
}


class CredentialFailed(Exception):
    """Auth did not store the credential: ``code``, ``details`` and ``trailers`` to answer with."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: Sequence[tuple[str, Any]] = ()) -> None:
        super().__init__(code.name)
        self.code, self.details, self.trailers = code, details, tuple(trailers)


class Credentials:
    def __init__(self, auth: AuthServiceAsyncStub, forwarding_secret: SecretStr | None) -> None:
        self._auth = auth
        self._forwarding_secret = forwarding_secret  # makes auth believe the forwarded client address

    async def create(
        self, context: Context, principal: Principal, tenant_id: str, user_id: str, password: str
    ) -> None:
        """Store ``password`` for the user; :class:`CredentialFailed` when auth refused or could not."""
        metadata = (
            ("authorization", f"Bearer {principal.token}"),
            *onward_metadata(context, self._forwarding_secret),
        )
        remaining = context.time_remaining()
        timeout = CREDENTIAL_TIMEOUT
        if remaining is not None:
            timeout = max(0.1, min(timeout, remaining - COMPENSATION_RESERVE))
        try:
            await self._auth.CreateCredential(
                auth_pb2.CreateCredentialRequest(tenant_id=tenant_id, user_id=user_id, password=password),
                metadata=metadata,
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _PASS_THROUGH:
                trailers = tuple(cast(Any, exc.trailing_metadata()) or ())
                raise CredentialFailed(exc.code(), exc.details() or "", trailers) from None
            # Never the exception itself in the log: its debug string carries nothing secret, but the
            # request object is out of reach only if nobody logs it.
            log.error("auth could not store a new user's credential", extra={"code": exc.code().name})
            raise CredentialFailed(grpc.StatusCode.UNAVAILABLE, "The auth service is unavailable") from None
