"""The upstream HTTP/1.1 client against real servers on loopback (each test on asyncio and uvloop)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from governd.execution.http_client import (
    HIGH_WATER,
    ConnectError,
    ConnectionBroken,
    HttpPool,
    ReadTimeout,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Serve = Callable[[Handler | None], Awaitable[tuple["Server", str]]]
OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'


class Server:
    """A TCP server on 127.0.0.1 whose every connection runs ``handler``; counts connections."""

    def __init__(self, handler: Handler | None) -> None:
        self.handler = handler or self.keep_answering
        self.reply = OK
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        """Read one request (head and content-length body) and remember it."""
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body

    async def keep_answering(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """The default handler: answer ``reply`` to every request until the client hangs up."""
        while True:
            try:
                await self.request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(self.reply)

    async def aclose(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[Server] = []

    async def start(handler: Handler | None) -> tuple[Server, str]:
        server = Server(handler)
        servers.append(server)
        return server, f"http://127.0.0.1:{await server.start()}/v1"

    yield start
    for server in servers:
        await server.aclose()


def pool(
    url: str, *, connections: int = 8, connect_s: float = 2.0, read_s: float = 5.0
) -> HttpPool:
    return HttpPool(url, {"authorization": "Bearer sk-up"}, connections, connect_s, read_s)


async def test_request_is_one_well_formed_post_and_connections_are_kept_alive(serve: Serve) -> None:
    server, url = await serve(None)
    client = pool(url)
    for _ in range(3):
        reply = await client.post("/chat/completions", b'{"model":"m"}')
        assert reply.status == 200 and await reply.read() == b'{"ok":true}'
    assert server.connections == 1 and len(server.requests) == 3
    head = server.requests[0].decode()
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"host: {url.split('/')[2]}\r\n" in head and "authorization: Bearer sk-up\r\n" in head
    assert 'content-length: 13\r\n\r\n{"model":"m"}' in head
    await client.aclose()


async def test_chunked_stream_arrives_piece_by_piece(serve: Serve) -> None:
    go_on = asyncio.Event()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await go_on.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")

    server, url = await serve(stream)
    reply = await pool(url).post("/chat/completions", b"{}")
    pieces = reply.chunks()
    assert await anext(pieces) == b"first"  # before the server has sent the rest
    go_on.set()
    assert [p async for p in pieces] == [b"second"]


async def test_interim_replies_are_skipped(serve: Serve) -> None:
    async def early_hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n")
        await writer.drain()
        # Not synchronisation: a gap, so the client reads the 103 on its own first.
        await asyncio.sleep(0.05)
        writer.write(OK)
        await server.keep_answering(reader, writer)

    server, url = await serve(early_hints)
    client = pool(url)
    reply = await client.post("/chat/completions", b"{}")
    assert reply.status == 200 and await reply.read() == b'{"ok":true}'
    assert await (await client.post("/chat/completions", b"{}")).read() == b'{"ok":true}'
    assert server.connections == 1


async def test_a_reply_without_length_ends_with_its_connection(serve: Serve) -> None:
    async def old_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")

    server, url = await serve(old_server)
    client = pool(url)
    reply = await client.post("/completions", b"{}")
    assert await reply.read() == b"all of it"
    reply = await client.post("/completions", b"{}")  # that connection is gone: a new one
    assert await reply.read() == b"all of it" and server.connections == 2


async def test_a_kept_alive_connection_the_server_dropped_is_replaced(serve: Serve) -> None:
    async def drop_second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first_connection = server.connections == 1
        await server.request(reader)
        writer.write(OK)
        if first_connection:
            await server.request(reader)  # read the next request, then close without a word

    server, url = await serve(drop_second)
    client = pool(url)
    assert await (await client.post("/chat/completions", b"{}")).read() == b'{"ok":true}'
    reply = await client.post("/chat/completions", b"{}")
    assert await reply.read() == b'{"ok":true}' and server.connections == 2


async def test_a_new_connection_closed_before_any_reply_is_an_error(serve: Serve) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)

    server, url = await serve(hang_up)
    with pytest.raises(ConnectionBroken, match="closed the connection"):
        await pool(url).post("/chat/completions", b"{}")
    assert server.connections == 1  # not retried: the server may have acted on it


async def test_a_reply_cut_short_is_broken_not_truncated(serve: Serve) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")

    server, url = await serve(cut)
    reply = await pool(url).post("/chat/completions", b"{}")
    with pytest.raises(ConnectionBroken, match="before the reply ended"):
        await reply.read()


async def test_what_is_not_http_is_refused(serve: Serve) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await reader.read()

    server, url = await serve(garbage)
    with pytest.raises(ConnectionBroken, match="not valid HTTP"):
        await pool(url).post("/chat/completions", b"{}")


async def test_silence_past_the_read_timeout(serve: Serve) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        await reader.read()

    server, url = await serve(silent)
    with pytest.raises(ReadTimeout, match=r"sent nothing for 0\.2 s"):
        await pool(url, read_s=0.2).post("/chat/completions", b"{}")


async def test_refused_and_unanswered_connections_are_connect_errors() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ConnectError):
        await pool(f"http://127.0.0.1:{port}/v1").post("/chat/completions", b"{}")
    with socket.socket() as full:  # a backlog that is already full: SYNs go unanswered
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        waiting = [socket.socket() for _ in range(3)]
        for sock in waiting:
            sock.setblocking(False)
            sock.connect_ex(full.getsockname())
        url = f"http://127.0.0.1:{full.getsockname()[1]}/v1"
        with pytest.raises(ConnectError, match=r"no connection within 0\.2 s"):
            await pool(url, connect_s=0.2).post("/chat/completions", b"{}")
        for sock in waiting:
            sock.close()


async def test_a_large_stream_read_slowly_arrives_whole(serve: Serve) -> None:
    body = bytes(range(256)) * (4 * HIGH_WATER // 256)

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    server, url = await serve(big)
    reply = await pool(url).post("/chat/completions", b"{}")
    got = bytearray()
    async for chunk in reply.chunks():
        got += chunk
        await asyncio.sleep(0)  # a consumer slower than the socket: reading pauses, then resumes
    assert bytes(got) == body


async def test_connections_are_bounded(serve: Serve) -> None:
    server, url = await serve(None)
    client = pool(url, connections=1)
    first = await client.post("/chat/completions", b"{}")
    second = asyncio.ensure_future(client.post("/chat/completions", b"{}"))
    await asyncio.sleep(0)
    assert not second.done()  # waits for the only connection
    await first.read()
    assert await (await second).read() == b'{"ok":true}' and server.connections == 1


async def test_https_with_a_trusted_ca_and_a_refused_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(OK)
        await writer.drain()

    server = Server(answer)
    url = f"https://127.0.0.1:{await server.start(tls)}/v1"
    with pytest.raises(ConnectError, match="certificate verify failed"):
        await pool(url).post("/chat/completions", b"{}")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    reply = await pool(url).post("/chat/completions", b"{}")
    assert reply.status == 200 and await reply.read() == b'{"ok":true}'
    await server.aclose()
