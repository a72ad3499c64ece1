"""Upstream kind ``openai``: any OpenAI-compatible server, over pooled HTTP (pyreqwest).

pyreqwest (Rust's reqwest and hyper) rather than aiohttp: in a bare
uvicorn + Starlette proxy on one core, it served 9,118 req/s against aiohttp's
5,707 at 32 connections and added ~0.2 ms less at one connection (see
docs/decisions.md). ``read_timeout_s`` bounds every wait for upstream bytes,
so it is the time to the first byte and the longest silence mid-stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import (
    ConnectError,
    ConnectTimeoutError,
    PyreqwestError,
    RequestTimeoutError,
)
from pyreqwest.request import StreamRequest
from pyreqwest.response import Response

from governd.config import OpenAIUpstream
from governd.errors import UpstreamError, UpstreamTimeout
from governd.execution.upstream import PATHS, UpstreamReply


class ConnectFailed(UpstreamError):
    """The upstream could not be reached: safe to retry, nothing was sent."""


class OpenAIClient:
    """A pooled client for one OpenAI-compatible base URL."""

    def __init__(self, name: str, cfg: OpenAIUpstream) -> None:
        self.name = name
        base = cfg.base_url.rstrip("/")
        self._urls = {path: base + path for path in PATHS.values()}
        self._cfg = cfg
        self._headers = {"content-type": "application/json", **cfg.headers}
        if cfg.api_key is not None:
            self._headers["authorization"] = f"Bearer {cfg.api_key.get_secret_value()}"
        self._client: Client | None = None

    async def start(self) -> None:
        """Create the connection pool."""
        self._client = (
            ClientBuilder()
            .default_headers(self._headers)
            .connect_timeout(timedelta(seconds=self._cfg.connect_timeout_s))
            .read_timeout(timedelta(seconds=self._cfg.read_timeout_s))
            .max_connections(self._cfg.max_connections)
            .tcp_nodelay(True)
            .build()
        )

    async def aclose(self) -> None:
        """Close the pool."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def post(self, path: str, body: dict[str, Any], stream: bool) -> UpstreamReply:
        """POST ``body``; a stream's reply is returned as soon as its status is known."""
        if self._client is None:
            await self.start()
        assert self._client is not None
        request = self._client.post(self._urls[path]).body_bytes(orjson.dumps(body))
        if not stream:
            try:
                resp = await request.build().send()
                return UpstreamReply(resp.status, bytes(await resp.bytes()))
            except PyreqwestError as exc:
                raise self._failure(exc) from None
        # pyreqwest would otherwise hold a stream back until 64 KiB have arrived.
        streamed = request.streamed_read_buffer_limit(0).build_streamed()
        try:
            resp = await streamed.__aenter__()
        except PyreqwestError as exc:
            raise self._failure(exc) from None
        close = _closer(streamed)
        if resp.status >= 400:
            try:
                data = bytes(await resp.bytes())
            except PyreqwestError as exc:
                raise self._failure(exc) from None
            finally:
                await close()
            return UpstreamReply(resp.status, data)
        return UpstreamReply(resp.status, chunks=self._chunks(resp), close=close)

    async def _chunks(self, resp: Response) -> AsyncIterator[bytes]:
        reader = resp.body_reader
        try:
            while (chunk := await reader.read_chunk()) is not None:
                yield bytes(chunk)
        except RequestTimeoutError:
            raise UpstreamTimeout(f"upstream {self.name} stalled mid-stream") from None
        except PyreqwestError as exc:
            raise UpstreamError(
                f"upstream {self.name} broke the stream: {type(exc).__name__}"
            ) from None

    def _failure(self, exc: PyreqwestError) -> UpstreamError | UpstreamTimeout:
        if isinstance(exc, ConnectError) or (
            isinstance(exc, ConnectTimeoutError) and _connecting(exc)
        ):
            return ConnectFailed(f"upstream {self.name} could not be reached")
        if isinstance(exc, RequestTimeoutError):
            return UpstreamTimeout(f"upstream {self.name} did not answer in time")
        return UpstreamError(f"upstream {self.name} failed: {type(exc).__name__}")


def _connecting(exc: PyreqwestError) -> bool:
    """Whether a timeout happened while connecting (nothing was sent, a retry is safe).

    pyreqwest raises ``ConnectTimeoutError`` also when a connected server is
    slow to answer; only the causes tell the two apart.
    """
    causes = getattr(exc, "details", None) or {}
    return any(
        "(Connect)" in c.get("message", "") or "tcp connect" in c.get("message", "")
        for c in causes.get("causes", ())
    )


def _closer(streamed: StreamRequest) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        await streamed.__aexit__(None, None, None)

    return close
