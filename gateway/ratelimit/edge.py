"""Which limits a request is charged against: its client IP, its user (when authenticated), and the
limit of the route's class (the policy's ``rate_limit``): for login, the account it tries to log in as
(from the request message); for the other classes, the caller (its user, else its client IP).

Every part of a key taken from the request goes through :func:`meshkit.redis_keys.key_part`, so a key
stays small whatever the client sends. Each key carries a Redis Cluster hash tag: the client IP
(``ip:{<ip>}``, and the IP-keyed class limits), or the tenant (``user:{<tenant>}:<sub>``, the user's class
limits, the login account) — the tenant tag is also that of the token's revocation marks, which the limit
script reads with the user's limits (:mod:`gateway.ratelimit.limiter`).
"""

from __future__ import annotations

from google.protobuf.message import Message

from gateway.config import GatewaySettings
from gateway.ratelimit.limiter import Keyed
from gateway.ratelimit.limits import Limit, parse_limit
from meshkit.auth.tokens import Principal
from meshkit.identity import login_account
from meshkit.redis_keys import key_part, tenant_tag
from stubs.portico.gateway.v1 import options_pb2


def login_key(policy: options_pb2.RoutePolicy, message: Message, ip: str) -> str:
    """The login limit's key: the account as auth resolves it (:func:`meshkit.identity.login_account`).

    ``key_fields`` names the tenant field, then the name fields in auth's order (username, then email).
    So " bob", "BOB" and "bob" with any email spend one budget, as they are one account to auth. The email
    of that account is a second budget here (only a lookup could tell it is the same account); auth's
    per-account lockout counts both together. No ``key_fields``: the client IP is the key.
    """
    if not policy.rate_limit.key_fields:
        return f"login-by-ip:{ip_tag(ip)}"  # its own prefix: no tenant "ip" can meet it
    fields = message.DESCRIPTOR.fields_by_name
    tenant, *names = [str(getattr(message, f)) if f in fields else "" for f in policy.rate_limit.key_fields]
    account = login_account(tenant, *names)
    return f"login:{tenant_tag(account.tenant_id)}:{key_part(account.name)}"


def ip_tag(ip: str) -> str:
    """``{<ip>}``: the hash tag of the limits keyed by the client IP."""
    return f"{{{key_part(ip)}}}"


def user_key(principal: Principal) -> str:
    return f"user:{tenant_tag(principal.tenant_id)}:{key_part(principal.sub)}"


def caller_key(ip: str, principal: Principal | None) -> str:
    """The caller of a class limit other than login's: its user when authenticated, else its client IP."""
    if principal is None:
        return f"ip:{ip_tag(ip)}"
    return user_key(principal)


class EdgeLimits:
    def __init__(self, settings: GatewaySettings) -> None:
        self.ip = parse_limit("ip", settings.rate_limit_per_ip)
        self.user = parse_limit("user", settings.rate_limit_per_user)
        self.login = parse_limit("login", settings.rate_limit_login)
        # The other classes, by their enum value; the limit's name is the class's, in the headers.
        self.classes = {
            options_pb2.RATE_LIMIT_CLASS_SIGNUP: parse_limit("signup", settings.rate_limit_signup),
            options_pb2.RATE_LIMIT_CLASS_PASSWORD: parse_limit("password", settings.rate_limit_password),
            options_pb2.RATE_LIMIT_CLASS_SEARCH: parse_limit("search", settings.rate_limit_search),
        }

    def for_refusal(self, ip: str) -> Keyed:
        """A request refused before any backend sees it (404/405, a missing, bad or revoked token, a bad
        body) is charged to the client IP too: a scanner of paths or a sprayer of forged tokens must meet
        a 429 rather than cost the gateway a signature check each time for free."""
        return [(self.ip, f"ip:{ip_tag(ip)}")]

    def for_request(
        self, policy: options_pb2.RoutePolicy, ip: str, principal: Principal | None, message: Message
    ) -> Keyed:
        limits: list[tuple[Limit, str]] = [(self.ip, f"ip:{ip_tag(ip)}")]
        if principal is not None:
            limits.append((self.user, user_key(principal)))
        limit_class = policy.rate_limit.limit_class
        if limit_class == options_pb2.RATE_LIMIT_CLASS_LOGIN:
            limits.append((self.login, login_key(policy, message, ip)))
        elif (limit := self.classes.get(limit_class)) is not None:
            limits.append((limit, f"{limit.name}:{caller_key(ip, principal)}"))
        return limits
