"""A deadline for the head of every request: uvicorn's httptools protocol, closing slow connections.

uvicorn times out a connection only while it is idle between requests (``timeout_keep_alive``); once a
client has sent one byte it may take forever to send the rest of the request line and headers. A
client that opens many connections and drips a byte now and then (slowloris) holds a socket, a file
descriptor and a parser per connection for as long as it likes. Here the head of each request must be
complete within ``header_timeout`` seconds, counted from the moment the connection opens or the
request's first byte arrives; otherwise the gateway answers 408 and closes the connection. Bodies are
not covered: they are read by the application, within its own limits and deadlines.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.one_write import CoalescingTransport

log = logging.getLogger(__name__)

_BODY = b"The request headers took too long.\n"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n%s" % (len(_BODY), _BODY)
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request head (see the module docstring)."""

    header_timeout: float = 10.0  # set per server by protocol_with_header_timeout
    # The timer is not re-armed and cancelled per request (two timer operations on every request): it
    # stays armed, and when it fires for a head that has completed since, it lapses (no head in
    # progress) or is set again for the head now in progress.
    _head_deadline: asyncio.TimerHandle | None = None
    _head_began: float | None = None  # loop time the current head began; None between requests

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_began = self.loop.time()
        self._arm_head_deadline(self._head_began)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The first byte of a request after an idle keep-alive connection (the connection's first
        # request began when it opened: its clock does not restart).
        if self._head_began is None:
            self._head_began = self.loop.time()
            if self._head_deadline is None:
                self._arm_head_deadline(self._head_began)

    def on_headers_complete(self) -> None:
        self._head_began = None
        super().on_headers_complete()
        if self.cycle is not None and not isinstance(self.cycle.transport, CoalescingTransport):
            # The response's head and body leave in one write (gateway.one_write).
            self.cycle.transport = CoalescingTransport(self.cycle.transport, self.loop)  # type: ignore[assignment]

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn warns twice per `Upgrade:` request (once advising to install a WebSocket library, as
        # the gateway runs with ws="none"); such a request is answered as the plain HTTP request it also
        # is, which is right here, so a client cannot fill the log with it.
        log.debug("upgrade request answered as plain HTTP")

    def _arm_head_deadline(self, began: float) -> None:
        self._head_deadline = self.loop.call_at(began + self.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        began = self._head_began
        if began is None:
            return  # no head in progress: the next request's first byte arms the deadline again
        if self.loop.time() < began + self.header_timeout:
            self._arm_head_deadline(began)  # armed for an earlier head: this one has time left
            return
        if self.transport.is_closing():
            return
        log.debug("request head not complete in time: connection closed", extra={"client": self.client})
        if self.cycle is None or self.cycle.response_complete:  # never in the middle of an answer
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


def protocol_with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to pass as uvicorn's ``http``, with this server's deadline."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})
