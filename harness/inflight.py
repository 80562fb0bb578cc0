"""Calls in flight across a SIGTERM: a few client threads call a process in a loop while it is stopped, and
each call is judged by when it started and how it ended.

A call that started before the signal must end with the process's own answer (OK or a business status
such as NOT_FOUND): the process accepted it, so it must finish it. A call that started after may also be
refused — UNAVAILABLE, the connection refused, or an idle keep-alive connection closed under the request
(HTTP lets a server do that; clients retry such a request) — which is how a stopping process turns new
work away. One more ending is counted apart: a gRPC call that reached the server in the instant it
stopped accepting ends CANCELLED, because gRPC's core cancels the calls it received but had not handed to
the application yet. Anything else (INTERNAL, a reset mid-answer) is a failure whenever it started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import httpx

# What a stopping process may answer a call that arrived after the signal.
REFUSED = "refused"
CANCELLED_AT_CLOSE = "cancelled at close"


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    ended: float
    result: str  # "ok", a gRPC status name for an answer or a failure, or REFUSED


# A call: runs one request, returns "ok" for the process's own answer or raises.
Call = Callable[[], str]


def grpc_call(fn: Callable[[], object], answers: frozenset[grpc.StatusCode]) -> str:
    """Run a gRPC call; a status in ``answers`` is the process's own answer (e.g. NOT_FOUND)."""
    try:
        fn()
    except grpc.RpcError as exc:
        code = exc.code()
        if code in answers:
            return "ok"
        if code == grpc.StatusCode.UNAVAILABLE:
            return REFUSED
        if code == grpc.StatusCode.CANCELLED:
            return CANCELLED_AT_CLOSE
        return f"{code.name}: {exc.details()}"
    return "ok"


def http_call(client: httpx.Client, url: str) -> str:
    """GET ``url``; a refused connection is a refusal, a connection dropped mid-request is a failure."""
    try:
        response = client.get(url)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return REFUSED  # refused, or an idle connection closed; before the signal this is a failure
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return "ok" if response.status_code < 500 else f"http_{response.status_code}"


@dataclass
class Load:
    """``clients`` threads, each repeating ``make_call()``'s call until stopped."""

    make_call: Callable[[], Call]
    clients: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for index in range(self.clients):
            thread = threading.Thread(target=self._run, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 15) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        return self.outcomes

    def _run(self) -> None:
        call = self.make_call()
        while not self._stop.is_set():
            started = time.monotonic()
            result = call()
            self.outcomes.append(Outcome(started, time.monotonic(), result))
            if result == REFUSED:
                time.sleep(0.05)  # the process is going away: do not spin


@dataclass(frozen=True)
class Verdict:
    in_flight_ok: int
    in_flight_failed: int
    after_ok: int
    after_refused: int
    after_cancelled: int
    failures: tuple[Outcome, ...]


def judge(outcomes: list[Outcome], signalled: float) -> Verdict:
    """Split ``outcomes`` at the signal: every call started before must have been answered; after it, a
    call may be answered or refused, never broken."""
    before = [o for o in outcomes if o.started < signalled and o.ended >= signalled]
    after = [o for o in outcomes if o.started >= signalled]
    failures = tuple(o for o in before if o.result != "ok") + tuple(
        o for o in after if o.result not in ("ok", REFUSED, CANCELLED_AT_CLOSE)
    )
    return Verdict(
        in_flight_ok=sum(o.result == "ok" for o in before),
        in_flight_failed=sum(o.result != "ok" for o in before),
        after_ok=sum(o.result == "ok" for o in after),
        after_refused=sum(o.result == REFUSED for o in after),
        after_cancelled=sum(o.result == CANCELLED_AT_CLOSE for o in after),
        failures=failures,
    )
