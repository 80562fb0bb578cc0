"""The gateway's request state, typed, and the one way to read it.

Starlette copies the mapping the lifespan yields into every request's ``scope["state"]``; middleware and
dispatch add per-request values to the same dict. ``request.state.x`` reads it by attribute, so mypy
sees ``Any``; ``state_of`` returns the same dict as a TypedDict, so every read is type-checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, cast

from starlette.requests import Request
from starlette.types import Scope

if TYPE_CHECKING:  # only names for the checker: these modules import the ones that read the state
    from gateway.client_ip import Network
    from gateway.config import GatewaySettings
    from gateway.edge_auth import EdgeAuth
    from gateway.metrics import GatewayMetrics
    from gateway.probes import Probe
    from gateway.ratelimit.edge import EdgeLimits
    from gateway.ratelimit.limiter import RedisLimiter
    from gateway.routing.live import LiveRoutes
    from gateway.upstreams import Upstreams
    from meshkit.readiness import Readiness
    from meshkit.redis_client import RedisClient
    from stubs.portico.gateway.v1.options_pb2 import ResponseShape


class State(TypedDict):
    """What the lifespan yields: the clients and tables every request shares."""

    settings: GatewaySettings
    metrics: GatewayMetrics
    upstreams: Upstreams
    redis: RedisClient
    probes: dict[str, Probe]
    readiness: Readiness
    routes: LiveRoutes
    edge_auth: EdgeAuth
    limiter: RedisLimiter
    edge_limits: EdgeLimits
    trusted_proxies: tuple[Network, ...]


class RequestState(State, total=False):
    """The shared state plus what this request's middleware and route added."""

    request_id: str  # set by the request-id middleware, before any route runs
    route_template: str  # the metrics label, set once a route is matched: never the raw path
    error_shape: ResponseShape  # the matched route's shape: how its errors are written
    client_ip: str  # the caller's address as the dispatcher derived it (for the access log)
    user_id: str  # the verified token's subject, once the dispatcher has checked it (access log)


def scope_state(scope: Scope) -> RequestState:
    """The state of the request ``scope`` belongs to (created empty if nothing set it yet, as Starlette
    does)."""
    return cast("RequestState", scope.setdefault("state", {}))


def state_of(request: Request) -> RequestState:
    """The state of ``request``: the same dict ``request.state`` reads, typed."""
    return scope_state(request.scope)
