"""The load generator's HTTP/1.1 client: JSON POSTs over kept-alive connections, and little else.

The bench shares the 2 cores with the stack it measures, so what its own
client costs is taken from the services. httpx cost 3-4 ms of CPU per POST in
this process (measured against a server answering after 10 ms: httpcore's pool
bookkeeping, anyio's locks, and an ``import sniffio`` that fails and searches
sys.path at every lock set-up); this client costs about 0.05 ms on the same
test. During the maximum burst httpx was 9.2 ms of the bench's CPU per report,
more than dosing's. The reports' answers need only a status, so that is what
this client reads: a status line, headers, a body by Content-Length or chunks.

Anything that goes wrong on a connection (refused, reset, closed mid-answer, a
malformed answer, the timeout) closes that connection and raises
:class:`TransportError`: the bench counts the report as not accepted, as it
did httpx's. A kept-alive connection the server has closed meanwhile (its
keep-alive timeout) is noticed before reuse, not by failing a report.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

_MAX_HEAD = 64 * 1024


class TransportError(Exception):
    """The request got no complete answer; the connection it used is closed."""


@dataclass(frozen=True)
class Response:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LoadClient:
    """POSTs JSON to one origin over at most ``max_connections`` kept-alive connections."""

    def __init__(
        self, base_url: str, *, headers: dict[str, str], max_connections: int = 200, timeout_s: float = 60.0
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"the load client speaks plain http to one host, not {base_url!r}")
        self._host = url.hostname
        self._port = url.port or 80
        self._prefix = url.path.rstrip("/")
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in {"host": url.netloc, **headers}.items()).encode()
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []

    async def post(self, path: str, *, json: Any) -> Response:
        body = orjson.dumps(json)
        request = b"POST %s HTTP/1.1\r\n%scontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
            (self._prefix + path).encode(),
            self._fixed,
            len(body),
            body,
        )
        async with self._slots:
            conn = None
            try:
                async with asyncio.timeout(self._timeout_s):
                    conn = await self._connection()
                    conn[1].write(request)
                    await conn[1].drain()
                    response, keep = await _read_response(conn[0])
            except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
                if conn is not None:
                    conn[1].close()
                raise TransportError(type(exc).__name__) from exc
            if keep:
                self._idle.append(conn)
            else:
                conn[1].close()
            return response

    async def _connection(self) -> _Connection:
        while self._idle:
            reader, writer = self._idle.pop()
            # The server closed it while it sat idle (its keep-alive timeout): seen here, not by a report.
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self._host, self._port)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _reader, writer in idle:
            writer.close()
        for _reader, writer in idle:
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def __aenter__(self) -> LoadClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


async def _read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    """One answer: (response, whether the connection may be used again)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise ValueError("answer head too long") from exc
    if len(head) > _MAX_HEAD:
        raise ValueError("answer head too long")
    status_line, *lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ValueError("not an HTTP/1.x status line")
    status = int(parts[1])
    fields: dict[bytes, bytes] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError("malformed header line")
        fields[name.strip().lower()] = value.strip().lower()
    if b"chunked" in fields.get(b"transfer-encoding", b""):
        content = await _read_chunks(reader)
    elif b"content-length" in fields:
        length = int(fields[b"content-length"])
        if length < 0:
            raise ValueError("negative content-length")
        content = await reader.readexactly(length)
    elif status in (204, 304) or 100 <= status < 200:
        content = b""
    else:  # no framing: the body runs to the end of the connection
        return Response(status, await reader.read()), False
    keep = fields.get(b"connection") != b"close" and parts[0] != b"HTTP/1.0"
    return Response(status, content), keep


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, up to the blank line
                pass
            return bytes(out)
        out += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
