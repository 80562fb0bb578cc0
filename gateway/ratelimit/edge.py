"""Which limits a request is charged against: its client IP, its user (when authenticated), and for
routes of the login class the tenant + account it tries to log in as (from the request message)."""

from __future__ import annotations

from google.protobuf.message import Message

from gateway.config import GatewaySettings
from gateway.ratelimit.limiter import Keyed
from gateway.ratelimit.limits import Limit, parse_limit
from meshkit.auth.tokens import Principal
from meshkit.identity import identity_key
from stubs.portico.gateway.v1 import options_pb2


class EdgeLimits:
    def __init__(self, settings: GatewaySettings) -> None:
        self.ip = parse_limit("ip", settings.rate_limit_per_ip)
        self.user = parse_limit("user", settings.rate_limit_per_user)
        self.login = parse_limit("login", settings.rate_limit_login)

    def for_refusal(self, ip: str) -> Keyed:
        """A request refused before any backend sees it (404/405, a missing, bad or revoked token, a bad
        body) is charged to the client IP too: a scanner of paths or a sprayer of forged tokens must meet
        a 429 rather than cost the gateway a signature check each time for free."""
        return [(self.ip, f"ip:{ip}")]

    def for_request(
        self, policy: options_pb2.RoutePolicy, ip: str, principal: Principal | None, message: Message
    ) -> Keyed:
        limits: list[tuple[Limit, str]] = [(self.ip, f"ip:{ip}")]
        if principal is not None:
            limits.append((self.user, f"user:{principal.tenant_id}:{principal.sub}"))
        if policy.rate_limit.limit_class == options_pb2.RATE_LIMIT_CLASS_LOGIN:
            fields = message.DESCRIPTOR.fields_by_name
            # An empty tenant means the default one (as auth reads it): both spellings share one budget.
            # Names are keyed by identity, as the stores compare them (fullwidth "BOB" is "bob").
            parts = [
                identity_key(str(getattr(message, f))) or ("default" if f == "tenant_id" else "")
                for f in policy.rate_limit.key_fields
                if f in fields
            ]
            limits.append((self.login, "login:" + ":".join(p for p in parts if p)))
        return limits
