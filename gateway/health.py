"""``/health`` (the process answers: liveness) and ``/ready`` (the gateway can serve: readiness).

``/ready`` probes every dependency and answers under the gateway's policy (:mod:`gateway.probes`): 503
only when the gateway cannot serve at all (no route table); a backend, Redis or Kafka that is down
*degrades* it — its routes answer 503, limits and revocations fall back in process — and shows in the
200 body as ``"status": "degraded"`` with the dependency's state and since when, and in
``portico_dependency_up``. Draining every replica for a dependency they all share would serve nobody.
``/ready?strict=true`` answers 503 naming every part that is down.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import error_response
from gateway.probes import check_all
from gateway.state import state_of


async def health(request: Request) -> Response:
    return JSONResponse({"status": "healthy"})


async def ready(request: Request) -> Response:
    state = state_of(request)
    readiness = state["readiness"]
    results = await check_all(state["probes"], state["settings"].ready_timeout)
    readiness.record(results)
    checks = {name: "up" if ok else "down" for name, ok in results.items()}
    dependencies = {name: report for name, report in readiness.report().items() if name in results}
    unready = [name for name in readiness.unready_for if name in results]
    if _strict(request):
        # Every part must answer: for a caller that needs the whole mesh up (a start-up script), not for
        # an orchestrator's readiness probe.
        unready = [name for name, ok in results.items() if not ok]
    if unready:
        return error_response(
            request,
            503,
            f"Not ready: {', '.join(unready)} unavailable",
            details={"checks": checks, "dependencies": dependencies},
        )
    status = "degraded" if any(not ok for ok in results.values()) else "ready"
    return JSONResponse({"status": status, "checks": checks, "dependencies": dependencies})


def _strict(request: Request) -> bool:
    return request.query_params.get("strict", "").lower() in ("1", "true", "yes")
