"""Whether the caller may author posts, asked of the users backend (``users.v1.UserService/GetUser``).

The caller's own token is passed on, so users applies its own rules (a deleted or deactivated user's
token is refused there too), and the call has a deadline: a slow or absent users backend makes a post
change answer UNAVAILABLE rather than hang or fail with an internal error.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING

import grpc
from pydantic import SecretStr

from meshkit.auth.tokens import Principal
from meshkit.rpc.context import Context
from meshkit.rpc.forwarding import onward_metadata
from stubs.users.v1 import users_pb2

if TYPE_CHECKING:
    from stubs.users.v1.users_pb2_grpc import UserServiceAsyncStub

log = logging.getLogger(__name__)


class Verdict(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"  # users does not know the caller
    REFUSED = "refused"  # users refused the caller's token
    UNAVAILABLE = "unavailable"


class AuthorCheck:
    def __init__(
        self, users: UserServiceAsyncStub, timeout: float, forwarding_secret: SecretStr | None = None
    ) -> None:
        self._users = users
        self._timeout = timeout
        self._forwarding_secret = forwarding_secret  # makes users believe the forwarded client address

    async def check(self, context: Context, principal: Principal) -> Verdict:
        """Whether the caller is a user that users knows and accepts."""
        metadata = (
            ("authorization", f"Bearer {principal.token}"),
            *onward_metadata(context, self._forwarding_secret),
        )
        remaining = context.time_remaining()
        timeout = self._timeout if remaining is None else max(0.05, min(self._timeout, remaining - 0.05))
        try:
            reply = await self._users.GetUser(
                users_pb2.GetUserRequest(tenant_id=principal.tenant_id, user_id=principal.sub),
                metadata=metadata,
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.NOT_FOUND:
                return Verdict.UNKNOWN
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                return Verdict.REFUSED
            log.warning("author check failed", extra={"code": code.name})
            return Verdict.UNAVAILABLE
        return Verdict.OK if reply.user.is_active else Verdict.REFUSED
