"""A loopback TCP forwarder a test controls: put it between one client (a spoke agent) and a
server (the hub), then `cut()` the link — every open connection is reset and new ones are
refused, as when a network partition or a dead load balancer cuts a cluster off — and
`restore()` it on the same port.

Bytes are forwarded as they are (TLS passes through untouched, so the client still verifies
the server's certificate). It runs its own asyncio loop in a daemon thread, so synchronous
tests can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from fleetplane_testing.ports import LOOPBACK, free_port

CHUNK = 64 * 1024


class TcpProxy:
    """Forward LOOPBACK:`port` to `target_host`:`target_port` until cut.

    with TcpProxy("127.0.0.1", hub_port).start() as proxy:
        ... point the client at proxy.port ...
        proxy.cut()      # resets open connections, refuses new ones
        proxy.restore()  # listens again on the same port
    """

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target_host, self.target_port = target_host, target_port
        self.port = port or free_port()
        self.connections = 0  # accepted since start (a test can see the client used the proxy)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    # ------------------------------------------------------------ control (any thread)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    @property
    def is_cut(self) -> bool:
        return self._server is None

    def cut(self) -> None:
        """Stop listening (new connections are refused) and reset every open connection."""
        self._call(self._cut())

    def restore(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            self._call(self._listen())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._cut())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # ------------------------------------------------------------ the loop's side

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, self.port, reuse_address=True)

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._open):
            w.transport.abort()  # RST: the client sees the connection reset at once
        self._open.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted in the instant of a cut
            client_w.transport.abort()
            return
        try:
            upstream_r, upstream_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self.connections += 1
        pair = {client_w, upstream_w}
        self._open |= pair
        try:
            await asyncio.gather(self._pipe(client_r, upstream_w), self._pipe(upstream_r, client_w))
        finally:
            self._open -= pair
            for w in pair:
                w.transport.abort() if self._server is None else w.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(CHUNK):
                dst.write(data)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()
        except (ConnectionError, OSError):
            dst.transport.abort()
