"""bench/http.py, the load generator's client, against a real asyncio server on loopback: what it sends,
that it keeps connections alive and notices closed ones, and that every broken answer is a TransportError
(a report not accepted) that costs the next request nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bench.http import LoadClient, TransportError


@dataclass
class Server:
    port: int = 0
    connections: int = 0
    requests: list[tuple[bytes, dict[bytes, bytes], bytes]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *rest = head[:-4].split(b"\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in rest)}
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                path = line.split(b" ")[1]
                self.requests.append((path, headers, body))
                answer = ANSWERS[path]
                if answer is None:  # hang up without answering
                    break
                if path == b"/slow":
                    await asyncio.sleep(1)
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


ANSWERS: dict[bytes, bytes | None] = {
    b"/v1/ok": b'HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"id": "r1"}',
    b"/v1/close": b"HTTP/1.1 409 Conflict\r\nconnection: close\r\ncontent-length: 2\r\n\r\nno",
    b"/v1/chunked": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n",
    b"/v1/garbage": b"SMTP ready\r\n\r\n",
    b"/v1/hangup": None,
    b"/slow": b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
}


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield s


def client(server: Server, **kw: object) -> LoadClient:
    return LoadClient(f"http://127.0.0.1:{server.port}/v1", headers={"Authorization": "Bearer t0k"}, **kw)


async def test_it_posts_json_with_its_headers_and_keeps_one_connection_for_sequential_requests(server) -> None:
    async with client(server) as http:
        for n in range(3):
            r = await http.post("/ok", json={"patient_id": "p", "grade": n})
            assert (r.status_code, r.json()) == (201, {"id": "r1"})
    assert server.connections == 1
    path, headers, body = server.requests[-1]
    assert path == b"/v1/ok" and headers[b"authorization"] == b"Bearer t0k"
    assert headers[b"content-type"] == b"application/json" and json.loads(body) == {"patient_id": "p", "grade": 2}


async def test_concurrent_requests_use_at_most_max_connections(server) -> None:
    async with client(server, max_connections=3) as http:
        answers = await asyncio.gather(*(http.post("/ok", json={}) for _ in range(20)))
    assert [a.status_code for a in answers] == [201] * 20
    assert server.connections <= 3


async def test_connection_close_and_a_chunked_body_are_read_as_the_server_framed_them(server) -> None:
    async with client(server) as http:
        closed = await http.post("/close", json={})
        chunked = await http.post("/chunked", json={})
    assert (closed.status_code, closed.content) == (409, b"no")
    assert (chunked.status_code, chunked.content) == (200, b"abcdefg")
    assert server.connections == 2  # the closed one was not reused


@pytest.mark.parametrize("path", ["/hangup", "/garbage"])
async def test_a_broken_answer_is_a_transport_error_and_the_next_request_is_unharmed(server, path) -> None:
    async with client(server) as http:
        with pytest.raises(TransportError):
            await http.post(path, json={})
        assert (await http.post("/ok", json={})).status_code == 201


async def test_a_kept_alive_connection_the_server_closed_is_replaced_not_failed(server) -> None:
    async with client(server) as http:
        assert (await http.post("/ok", json={})).status_code == 201
        for writer in server.writers:  # the server's keep-alive timeout
            writer.close()
        await asyncio.sleep(0.05)
        assert (await http.post("/ok", json={})).status_code == 201
    assert server.connections == 2


async def test_no_answer_within_the_timeout_is_a_transport_error() -> None:
    s = Server()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = srv.sockets[0].getsockname()[1]
    async with srv:
        http = LoadClient(f"http://127.0.0.1:{s.port}", headers={}, timeout_s=0.2)
        with pytest.raises(TransportError, match="TimeoutError"):
            await http.post("/slow", json={})
        await http.aclose()


async def test_nothing_listening_is_a_transport_error() -> None:
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    with pytest.raises(TransportError):
        await LoadClient(f"http://127.0.0.1:{port}", headers={}).post("/ok", json={})


def test_only_plain_http_to_one_host() -> None:
    with pytest.raises(ValueError, match="plain http"):
        LoadClient("https://example.org", headers={})
