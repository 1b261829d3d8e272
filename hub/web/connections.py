"""Connection limits the server (uvicorn) does not have, as its HTTP protocol class.

What uvicorn 0.3x–0.5x offers and what it lacks (read in uvicorn/protocols/http/h11_impl.py):
- `timeout_keep_alive` closes a connection idle BETWEEN requests; it is cancelled by the first
  byte of the next request and never armed for a new connection. So a client that connects and
  sends nothing, or sends its headers one byte a second (slowloris), is held forever.
- `h11_max_incomplete_event_size` caps the size of the headers (16 KiB default), not their time.
- `limit_concurrency` answers a plain-text 503 per request once connections OR tasks reach it,
  but still accepts the connections, and idle ones stay open.
- Nothing bounds how long a request body takes.

`guarded_protocol(limits)` closes those gaps: a connection must deliver each request's headers
within `header_timeout` (counted from connecting, or from the first byte of a request on a
kept-alive connection) and its body within `body_timeout`, else it is closed; beyond
`max_connections` open connections (shared by every server using the same `ConnectionLimits`)
a new connection is answered 503 with a Kubernetes `Status` and Retry-After, then closed.

Two parsers, the same guarantees: uvicorn's httptools protocol (llhttp, in C; the default) and
its h11 protocol (pure Python). A create or get spent ~15 % of the hub's CPU in h11 parsing
and writing the request (docs/scaling.md, "API request path"). llhttp has no limit on the size
of the headers (h11 has 16 KiB), so the httptools protocol adds that one: a request whose
headers are not complete within MAX_HEADER_BYTES is answered 431 and closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub.errors import unavailable

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
"""Longest request head (request line and headers) the httptools protocol reads: h11's default,
which the hub had before (docs/security.md). Beyond it: 431 and the connection is closed."""


@dataclass
class ConnectionLimits:
    max_connections: int
    header_timeout: float
    body_timeout: float
    open: set[asyncio.Protocol] = field(default_factory=set)
    """Connections open now, across every server sharing these limits."""
    refused: int = 0
    timed_out: int = 0


def _refusal(limit: int) -> bytes:
    body = json.dumps(
        unavailable(f"the hub has {limit} open connections, its limit; retry shortly", 1).status()
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\nContent-Length: 39\r\n\r\nrequest headers are larger than 16 KiB\n"
)


class _RequestTimer:
    """The one timer of a guarded connection: the phase of the request it guards ("headers" |
    "body"; "" when none runs: handling, or idle between requests), and what firing does
    (count it, close the connection). Shared by both guarded protocols."""

    def __init__(self, limits: ConnectionLimits, loop: asyncio.AbstractEventLoop, protocol: Any) -> None:
        self.limits, self.loop, self.protocol = limits, loop, protocol
        self.handle: asyncio.TimerHandle | None = None
        self.phase = ""

    def arm(self, phase: str, seconds: float) -> None:
        self.disarm()
        self.phase = phase
        self.handle = self.loop.call_later(seconds, self._expired)

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.phase = ""

    def _expired(self) -> None:
        phase, self.handle, self.phase = self.phase, None, ""
        self.limits.timed_out += 1
        log.info("closing a connection from %s: its request %s took too long", self.protocol.client, phase)
        transport = self.protocol.transport
        if transport is not None and not transport.is_closing():
            transport.close()


def guarded_protocol(limits: ConnectionLimits, parser: str = "httptools") -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol ("httptools" or "h11") with header/body timeouts and a cap on
    open connections."""
    if parser == "h11":
        return guarded_h11_protocol(limits)
    if parser != "httptools":
        raise ValueError(f'parser must be "httptools" or "h11", not {parser!r}')
    return guarded_httptools_protocol(limits)


def guarded_httptools_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the guards of `guarded_h11_protocol`, and a 16 KiB cap
    on the request head (llhttp has none)."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._timer = _RequestTimer(limits, self.loop, self)
            self._refused = False
            self._in_request = False  # between a request's first byte and its last
            self._head_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(limits.open) >= limits.max_connections:
                self._refused = True
                limits.refused += 1
                transport.write(_refusal(limits.max_connections))
                transport.close()
                return
            limits.open.add(self)
            super().connection_made(transport)
            self._timer.arm("headers", limits.header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            limits.open.discard(self)
            self._timer.disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._timer.phase == "" and not self._in_request:
                self._timer.arm("headers", limits.header_timeout)  # the first byte of a next request
            if self._timer.phase == "headers":
                self._head_bytes += len(data)
            super().data_received(data)
            if (
                self._timer.phase == "headers"
                and self._head_bytes > MAX_HEADER_BYTES
                and not self.transport.is_closing()
            ):
                self._timer.disarm()
                self.transport.write(_TOO_LARGE)
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_request = True

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._head_bytes = 0
            self._timer.arm("body", limits.body_timeout)  # disarmed by on_message_complete, at once without a body

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_request = False
            self._timer.disarm()

        def shutdown(self) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self._timer.disarm()  # idle (keep-alive): drop it now, as the h11 protocol does
                self.transport.abort()
                return
            super().shutdown()

    return GuardedHttpToolsProtocol


def guarded_h11_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with header/body timeouts and a cap on open connections."""

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._timer = _RequestTimer(limits, self.loop, self)
            self._refused = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if len(limits.open) >= limits.max_connections:
                self._refused = True
                limits.refused += 1
                assert isinstance(transport, asyncio.Transport)
                transport.write(_refusal(limits.max_connections))
                transport.close()
                return
            limits.open.add(self)
            super().connection_made(transport)  # type: ignore[arg-type]
            self._timer.arm("headers", limits.header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            limits.open.discard(self)
            self._timer.disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._timer.phase == "" and self.conn.their_state is h11.IDLE:
                self._timer.arm("headers", limits.header_timeout)  # the first byte of a next request
            super().data_received(data)
            self._follow()

        def shutdown(self) -> None:
            if self.cycle is None or self.cycle.response_complete:
                # Idle (keep-alive): drop it now. A TLS close waits for the client's close_notify,
                # which an idle pooled client never reads, so uvicorn's graceful shutdown timed
                # out on such connections and logged an error on every stop.
                self._timer.disarm()
                self.transport.abort()
                return
            super().shutdown()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def _follow(self) -> None:
            """Move the timer along with the request: headers → body → none."""
            state = self.conn.their_state
            if state is h11.IDLE:
                return  # still waiting for headers (timer armed), or idle under keep-alive
            if state is h11.SEND_BODY:
                if self._timer.phase != "body":
                    self._timer.arm("body", limits.body_timeout)
                return
            self._timer.disarm()  # the whole request arrived (or the connection is closing)

    return GuardedH11Protocol
