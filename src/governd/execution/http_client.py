"""An HTTP/1.1 client for one origin: keep-alive connections on asyncio, replies parsed by httptools.

This is the upstream hot path, so it does only what a gateway needs: POST a
body, then read the reply whole or stream it. It costs a third of aiohttp's
client CPU per call and ~0.15-0.4 ms less after an idle gap, when caches are
cold (bench/upstream_client.py; docs/decisions.md). The request goes out in
one write; llhttp (through httptools, the parser uvicorn uses) parses the reply.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

#: Bytes of a stream buffered before the socket stops being read (back-pressure).
HIGH_WATER = 256 * 1024


class HttpError(Exception):
    """The exchange failed; messages name what happened, never a header's value."""


class ConnectError(HttpError):
    """No connection could be made: nothing was sent, so trying again is safe."""


class ReadTimeout(HttpError):
    """The server sent nothing for longer than the read timeout."""


class ConnectionBroken(HttpError):
    """The connection closed, or sent what is not HTTP, before the reply ended."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one exchange at a time."""

    def __init__(self, read_timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._read_timeout = read_timeout
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._active = False
        self.received = False
        self._head = False
        self._delimited = False
        self.complete = False
        self._keep_alive = False
        self._interim = False
        self._error: HttpError | None = None

    # asyncio.Protocol and httptools callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self._active:  # bytes nobody asked for (a 408 on an idle connection)
            self.close()
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionBroken(f"sent a reply that is not valid HTTP ({exc})"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._active and not self.complete:
            if self._head and not self._delimited:
                self.complete = True  # a reply without a length ends when the connection does
            else:
                self._fail(ConnectionBroken("closed the connection before the reply ended"))
        self._wake()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._delimited = True

    def on_headers_complete(self) -> None:
        if self._parser.get_status_code() < 200:
            self._interim = True  # 103 Early Hints and the like: the reply follows
            return
        self._head = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = self._delimited = False
            return
        self.complete = True
        # Asked now: the parser forgets the message once feed_data returns.
        self._keep_alive = bool(self._parser.should_keep_alive())
        self._wake()

    # the exchange, as the pool drives it
    def send(self, data: bytes) -> None:
        """Start an exchange by writing the whole request."""
        assert self.transport is not None
        self._active = True
        self.received = self._head = self._delimited = self.complete = False
        self._keep_alive = self._interim = False
        self._error = None
        self.transport.write(data)

    async def status(self) -> int:
        """The reply's status code, once its head has arrived."""
        while not self._head:
            if self._error is not None:
                raise self._error
            await self._wait()
        return int(self._parser.get_status_code())

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body; None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered <= HIGH_WATER // 2 and self.transport:
                    self._paused = False
                    self.transport.resume_reading()
                return chunk
            if self._error is not None:
                raise self._error
            if self.complete:
                self._active = False
                return None
            await self._wait()

    @property
    def reusable(self) -> bool:
        """Whether the exchange ended cleanly on a connection the server keeps open."""
        return (
            self.complete
            and not self._chunks
            and not self.lost
            and self._error is None
            and self._delimited
            and self._keep_alive
        )

    @property
    def usable(self) -> bool:
        """Whether an idle connection can carry another exchange."""
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        """Drop the connection (an unfinished reply cannot share it)."""
        self._active = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def _wait(self) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_later(self._read_timeout, self._expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(ReadTimeout(f"sent nothing for {self._read_timeout:g} s"))

    def _fail(self, error: HttpError) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Reply:
    """A reply whose head has arrived; read it whole or as chunks, then it frees its connection."""

    def __init__(self, pool: HttpPool, conn: _Connection, status: int) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = status

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        conn = self._conn
        try:
            while conn is not None and (chunk := await conn.next_chunk()) is not None:
                parts.append(chunk)
        finally:
            self.release()
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive."""
        conn = self._conn
        if conn is None:
            return
        try:
            while (chunk := await conn.next_chunk()) is not None:
                yield chunk
        finally:
            self.release()

    def release(self) -> None:
        """Give the connection back, or close it if the reply was not read to its end."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.give_back(conn)

    async def aclose(self) -> None:
        """``release`` for callers that await their closers."""
        self.release()


class HttpPool:
    """Keep-alive connections to one ``http(s)://host[:port][/base]`` origin."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        max_connections: int,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        self._base = url.path.rstrip("/")
        fixed = {"host": url.netloc, "accept-encoding": "identity", **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._heads: dict[str, bytes] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._connect_timeout = connect_timeout_s
        self._read_timeout = read_timeout_s

    async def post(self, path: str, body: bytes) -> Reply:
        """Send ``body`` to ``path``; returns once the reply's status is known."""
        head = self._heads.get(path)
        if head is None:
            line = f"POST {self._base}{path} HTTP/1.1\r\n".encode("latin-1")
            head = self._heads[path] = line + self._fixed + b"content-length: "
        request = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        await self._slots.acquire()
        try:
            conn, status = await self._exchange(request)
        except BaseException:
            self._slots.release()
            raise
        return Reply(self, conn, status)

    async def _exchange(self, request: bytes) -> tuple[_Connection, int]:
        while True:
            conn = self._reuse()
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            self._busy.add(conn)
            conn.send(request)
            try:
                return conn, await conn.status()
            except ConnectionBroken:
                self._drop(conn)
                # A kept-alive connection the server had already closed: it never saw this request.
                if reused and not conn.received:
                    continue
                raise
            except BaseException:
                self._drop(conn)
                raise

    def _reuse(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(self._read_timeout)
        try:
            async with asyncio.timeout(self._connect_timeout):
                transport, _ = await loop.create_connection(
                    lambda: conn,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
        except TimeoutError:
            conn.close()
            raise ConnectError(f"no connection within {self._connect_timeout:g} s") from None
        except OSError as exc:
            raise ConnectError(exc.strerror or str(exc) or type(exc).__name__) from None
        # uvloop may call connection_made only after create_connection returns.
        conn.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def give_back(self, conn: _Connection) -> None:
        """An exchange ended: keep its connection for the next one, or close it."""
        self._busy.discard(conn)
        if conn.reusable:
            self._idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    def _drop(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        conn.close()

    async def aclose(self) -> None:
        """Close every connection, idle or busy."""
        for conn in (*self._idle, *self._busy):
            conn.close()
        self._idle.clear()
        self._busy.clear()
