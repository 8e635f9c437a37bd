"""A loopback TCP proxy a test can stall: the network between a client and a server going quiet.

    proxy = await TcpProxy.start(upstream_port)   # listens on 127.0.0.1:proxy.port
    proxy.stall()     # bytes stop moving both ways (held, not dropped); new connections wait too
    proxy.resume()    # held bytes move on, for connections that are still open
    proxy.requests    # reads from clients so far: a request-response protocol's round trips
    await proxy.close()

    proxy = ProxyThread(upstream_port, port)   # the same on an event loop of its own, for
    proxy.stall(); proxy.resume(); proxy.close()   # synchronous callers (the fault suite's nemesis)

A connection the client closes while stalled loses what was held for it, as a
request on a connection that timed out does. Kafka clients connect to the
address a broker advertises, not the bootstrap address: a broker behind this
proxy must advertise the proxy's port (tests/proxied_kafka.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any


class TcpProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0
        # Chunks read from clients, all connections together. A client of a request-response
        # protocol (PostgreSQL's) writes each request whole and waits for the answer: one a round trip.
        self.requests = 0

    @classmethod
    async def start(cls, upstream_port: int, port: int = 0) -> TcpProxy:
        proxy = cls(upstream_port)
        proxy._server = await asyncio.start_server(proxy._accept, "127.0.0.1", port)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            await self._flowing.wait()
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
            try:
                await asyncio.gather(
                    self._pipe(client_reader, upstream_writer, from_client=True),
                    self._pipe(upstream_reader, client_writer),
                )
            finally:
                upstream_writer.close()
        except (ConnectionError, OSError):
            pass
        finally:
            client_writer.close()
            self._pipes.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_client: bool = False
    ) -> None:
        try:
            while data := await reader.read(65536):
                self.requests += from_client
                await self._flowing.wait()
                if reader.at_eof() or writer.is_closing():
                    return  # closed while stalled: what was held goes with it
                writer.write(data)
                await writer.drain()
        finally:
            # One side gone: the other goes too, whatever was held for it.
            with contextlib.suppress(Exception):
                writer.close()


class ProxyThread:
    """A TcpProxy running on an event loop in a thread of its own: it lives as long as a
    module-scoped fixture (longer than any test's loop) and synchronous code stalls it."""

    def __init__(self, upstream_port: int, port: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._proxy = self._call(TcpProxy.start(upstream_port, port))
        self.port = self._proxy.port

    def stall(self) -> None:
        self._call(_now(self._proxy.stall))

    def resume(self) -> None:
        self._call(_now(self._proxy.resume))

    def close(self) -> None:
        try:
            self._call(self._proxy.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)


async def _now(action: Callable[[], None]) -> None:
    action()  # on the proxy's loop: asyncio.Event is not thread-safe
