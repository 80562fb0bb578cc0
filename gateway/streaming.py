"""Server-streaming RPCs as Server-Sent Events or NDJSON, chosen by ``Accept``.

- SSE: one event per message (``id:`` from the policy's ``sse_id_field``, ``data:`` the message's
  JSON with proto field names), a ``: keep-alive`` comment while the backend is quiet, so proxies and
  browsers keep the connection open.
- NDJSON: one JSON object per line. It has no comment syntax, and a blank line would break strict
  parsers, so it gets no keep-alive.
- A failure before the stream starts is an ordinary error response with its status; one after it has
  started is a last item (SSE ``event: error``, NDJSON ``{"error": …}``) carrying the envelope.
- A client that goes away cancels the gRPC call at once, not at the next write.
- Resuming: the SSE ``Last-Event-ID`` header (what a reconnecting browser sends) goes into the request
  field ``last_event_id`` when the stream's request has one; the backend continues after that id.

Deadline: the policy's ``deadline_ms`` is the whole call's gRPC deadline when set; 0 means none, as
options.proto says: a subscription lasts until the client goes away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.transcode.response import to_json

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
KEEP_ALIVE = b": keep-alive\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# How long the gateway waits for the backend to accept the call (initial metadata), send a first
# message or fail, before it opens the HTTP stream anyway. Within it, a refusal is a plain error response.
OPEN_WAIT_S = 2.0


RESUME_FIELD = "last_event_id"


def resume(message: Message, last_event_id: str | None) -> None:
    """Hand the ``Last-Event-ID`` header to the backend in the request's ``last_event_id`` string field,
    if it has one: a convention rather than a per-route option, as path variables bind by field name."""
    field = message.DESCRIPTOR.fields_by_name.get(RESUME_FIELD)
    if last_event_id and field is not None and field.type == FieldDescriptor.TYPE_STRING:
        setattr(message, RESUME_FIELD, last_event_id)


def negotiate(accept: str | None) -> str | None:
    """SSE or NDJSON by the Accept header (q-values honoured); None when it allows neither (a 406).

    No Accept, ``*/*`` or a tie picks SSE: it is the contract's live-stream format, what a browser's
    EventSource asks for, and it carries ids and keep-alives; NDJSON must be asked for by name.
    """
    if not accept or not accept.strip():
        return SSE
    best: dict[str, tuple[float, int]] = {}  # media type → (q, specificity) of the best matching range
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        media = media.lower()
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        for offered in (SSE, NDJSON):
            kind = offered.split("/")[0]
            specificity = (
                2 if media == offered else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
            )
            if specificity >= 0 and specificity > best.get(offered, (0.0, -1))[1]:
                best[offered] = (q, specificity)
    ranked = [(best[o][0], o == SSE, o) for o in (SSE, NDJSON) if o in best and best[o][0] > 0]
    return max(ranked)[2] if ranked else None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sse_event(data: Any, *, event_id: str = "", event: str = "") -> bytes:
    """One SSE event; compact JSON has no newline, so ``data:`` is one line."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if event_id:
        # An id may not contain a line break or NUL (the browser would ignore or split it).
        lines.append("id: " + "".join(c for c in event_id if c not in "\r\n\0"))
    lines.append(f"data: {_dumps(data)}")
    return ("\n".join(lines) + "\n\n").encode()


def ndjson_line(data: Any) -> bytes:
    return (_dumps(data) + "\n").encode()


@dataclass(frozen=True)
class Framing:
    media_type: str
    id_field: str = ""

    def item(self, message: Message) -> bytes:
        data = to_json(message)
        if self.media_type == NDJSON:
            return ndjson_line(data)
        event_id = str(getattr(message, self.id_field)) if self.id_field else ""
        return sse_event(data, event_id=event_id)

    def error(self, envelope: dict[str, Any]) -> bytes:
        return ndjson_line(envelope) if self.media_type == NDJSON else sse_event(envelope, event="error")

    @property
    def keep_alive(self) -> bytes:
        return KEEP_ALIVE if self.media_type == SSE else b""


Read = asyncio.Future[Any]  # a pending ``call.read()``: a message, ``grpc.aio.EOF``, or an AioRpcError


async def opened(call: grpc.aio.UnaryStreamCall[Any, Any], wait: float = OPEN_WAIT_S) -> Read:
    """Start reading; return the first read once the backend has answered, failed or ``wait`` has passed.

    A backend that accepts a subscription should send its initial metadata at once: the client then
    gets its 200 without waiting for a first message.
    """
    first: Read = asyncio.ensure_future(call.read())
    headers = asyncio.ensure_future(call.initial_metadata())
    try:
        await asyncio.wait({first, headers}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        if headers.done() and not first.done():
            # A refusal arrives as headers and status together: let the read see the status too.
            await asyncio.wait({first}, timeout=0.01)
    except BaseException:
        call.cancel()
        first.cancel()
        raise
    finally:
        # Left to finish with the call (cancelling it could cancel the RPC); its outcome is not needed.
        headers.add_done_callback(_ignore_outcome)
    return first


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log "exception was never retrieved"


async def frames(
    call: grpc.aio.UnaryStreamCall[Any, Any],
    first: Read,
    framing: Framing,
    keep_alive: float,
    on_error: Callable[[grpc.aio.AioRpcError], dict[str, Any]],
) -> AsyncIterator[bytes]:
    """The response body: an item per message, keep-alives while idle, an error item on failure."""
    pending = first
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=keep_alive)
            if not done:
                if framing.keep_alive:
                    yield framing.keep_alive
                continue
            try:
                item = pending.result()
            except grpc.aio.AioRpcError as exc:
                yield framing.error(on_error(exc))
                return
            if item is grpc.aio.EOF:  # type: ignore[attr-defined]
                return
            yield framing.item(item)
            pending = asyncio.ensure_future(call.read())
    finally:
        call.cancel()  # a no-op after a clean end; stops the backend's work when the client left
        pending.cancel()


class StreamResponse(StreamingResponse):
    """A streaming response that notices a client disconnect at once, whatever the ASGI server's spec
    version (Starlette only polls for it before ASGI 2.4, and otherwise learns of it at the next write,
    which for a quiet topic is the next keep-alive, seconds later)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pump = asyncio.create_task(self.stream_response(send))
        gone = asyncio.create_task(watch())
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, gone):
                task.cancel()
            await asyncio.gather(pump, gone, return_exceptions=True)
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with suppress(Exception):
                    await aclose()
        error = pump.exception() if pump.done() and not pump.cancelled() else None
        if error is not None and not isinstance(error, OSError):  # OSError: the client left mid-write
            raise error
