"""REST paths straight to the dispatcher, past the matching of the operations routes.

Starlette's router tries every route's pattern on every request and, when none matches, every route
again with the path's trailing slash added or removed (to redirect there), before its default app: the
dispatcher, which serves every REST route. No operations route (``/health``, ``/metrics``, ``/docs/…``)
can match a path whose first segment none of them has, nor that path's slash variant (it has the same
first segment): such a path goes to the default app at once. The outcome is the router's; only the two
scans are skipped.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send


class RouterApp(Protocol):
    """What Starlette's router keeps as its middleware stack (the type of its own ``app`` method)."""

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]: ...


def _first_segment(path: str) -> str | None:
    parts = path.split("/", 2)
    return parts[1] if len(parts) > 1 and not parts[0] else None


def rest_shortcut(router: Router) -> RouterApp:
    """The router's ASGI app, with the shortcut; the router itself when its routes do not allow it
    (a route that is not a plain path, or one whose first segment is a parameter)."""
    claimed = set()
    for route in router.routes:
        segment = _first_segment(route.path) if isinstance(route, Route) else None
        if not segment or "{" in segment:
            return router.app
        claimed.add(segment)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            segment = _first_segment(scope["path"])
            if segment is not None and segment not in claimed:
                scope.setdefault("router", router)
                await router.default(scope, receive, send)
                return
        await router.app(scope, receive, send)

    return app
