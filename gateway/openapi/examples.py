"""The example call of a route, from its policy's `example` option (JSON texts in the proto).

A text that is not JSON is left out rather than failing the document: the unit tests check that
every operation has its examples and that each one validates against its own schema.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.routing.rules import Route
from gateway.streaming import ndjson_line, sse_event

_MISSING = object()


def request_example(route: Route) -> Any:
    """The example request body, or ``_MISSING``."""
    return _parsed(route.policy.example.request) if route.body else _MISSING


def response_example(route: Route) -> Any:
    """The example payload of a successful answer (one item of a stream), or ``_MISSING``."""
    return _parsed(route.policy.example.response)


def enveloped(route: Route, payload: Any) -> Any:
    """The example as the answer's body: inside ``{"data": …}`` unless the route omits it."""
    return payload if route.policy.response.omit_envelope else {"data": payload}


def stream_examples(route: Route, item: Any) -> dict[str, str]:
    """The example item as each streamed media type writes it."""
    id_field = route.policy.response.sse_id_field
    event_id = str(item.get(id_field, "")) if id_field and isinstance(item, dict) else ""
    return {
        "text/event-stream": sse_event(item, event_id=event_id).decode(),
        "application/x-ndjson": ndjson_line(item).decode(),
    }


def present(example: Any) -> bool:
    return example is not _MISSING


def _parsed(text: str) -> Any:
    if not text:
        return _MISSING
    try:
        return json.loads(text)
    except ValueError:
        return _MISSING
