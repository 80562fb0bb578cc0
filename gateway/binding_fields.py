"""Request fields a binding takes from the call rather than from the request body (its BindingPolicy):
the caller's user id (`caller_id_fields`, e.g. `PUT /users/` on the caller's own profile) and the tenant
named by `X-Tenant-ID` (`tenant_header_field`, e.g. seed 001's register and login, which send none).
"""

from __future__ import annotations

from google.protobuf.message import Message

from gateway.inbound import Rejected
from gateway.routing.rules import Route
from meshkit.auth.tokens import Principal


def bind_call_fields(
    route: Route, message: Message, principal: Principal | None, tenant_headers: list[str]
) -> None:
    """Set the route's call fields on ``message``; Rejected (400) for an ambiguous tenant."""
    if principal is not None:
        for name in route.caller_id_fields:  # over whatever the body said: the binding acts on the caller
            setattr(message, name, principal.sub)
    field = route.tenant_header_field
    if not field or not tenant_headers:
        return
    if len(tenant_headers) > 1:
        raise Rejected(400, "Send at most one X-Tenant-ID header")
    sent = getattr(message, field)
    if sent and sent != tenant_headers[0]:
        raise Rejected(400, f"X-Tenant-ID does not match {field}")
    setattr(message, field, tenant_headers[0])
