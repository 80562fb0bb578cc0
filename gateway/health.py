"""``/health`` (the process is alive) and ``/ready`` (every upstream, Redis and Kafka answer)."""

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
    results = await check_all(state["probes"], state["settings"].ready_timeout)
    for name, ok in results.items():
        state["metrics"].dependency_up.labels(name).set(1 if ok else 0)
    checks = {name: "up" if ok else "down" for name, ok in results.items()}
    down = [name for name, ok in results.items() if not ok]
    if down:
        return error_response(
            request, 503, f"Not ready: {', '.join(down)} unavailable", details={"checks": checks}
        )
    return JSONResponse({"status": "ready", "checks": checks})
