"""The typed request state is the very dict Starlette's ``request.state`` reads and writes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.state import scope_state, state_of


def _request(scope_extra: dict[str, Any]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], **scope_extra})


def test_state_of_reads_and_writes_the_scope_state() -> None:
    shared: dict[str, Any] = {"request_id": "abc"}
    request = _request({"state": shared})
    state = state_of(request)
    assert state is shared
    assert state.get("request_id") == "abc"
    state["route_template"] = "/v1/users/{id}"
    assert request.state.route_template == "/v1/users/{id}"


def test_a_scope_without_state_gets_an_empty_one() -> None:
    scope: dict[str, Any] = {"type": "http"}
    assert scope_state(scope).get("route_template") is None
    assert scope["state"] == {}
