"""Upstream kind ``openai``: any OpenAI-compatible server, over governd's keep-alive HTTP/1.1 pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from governd.config import OpenAIUpstream
from governd.errors import UpstreamError, UpstreamTimeout
from governd.execution.http_client import ConnectError, HttpError, HttpPool, ReadTimeout, Reply
from governd.execution.upstream import UpstreamReply


class ConnectFailed(UpstreamError):
    """The upstream could not be reached: safe to retry, nothing was sent."""


class OpenAIClient:
    """A pooled client for one OpenAI-compatible base URL."""

    kind = "openai"

    def __init__(self, name: str, cfg: OpenAIUpstream) -> None:
        self.name = name
        self._cfg = cfg
        self._headers = {"content-type": "application/json", **cfg.headers}
        if cfg.api_key is not None:
            self._headers["authorization"] = f"Bearer {cfg.api_key.get_secret_value()}"
        # Every header but content-type may carry a credential (Azure's api-key, a gateway's).
        sent = [v for k, v in self._headers.items() if k != "content-type"]
        key = [cfg.api_key.get_secret_value()] if cfg.api_key is not None else []
        self.secrets = tuple(sent + key)
        self._pool: HttpPool | None = None

    async def start(self) -> None:
        """Create the connection pool inside the running loop."""
        cfg = self._cfg
        self._pool = HttpPool(
            cfg.base_url,
            self._headers,
            cfg.max_connections,
            cfg.connect_timeout_s,
            cfg.read_timeout_s,
        )

    async def aclose(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def post(self, path: str, body: dict[str, Any], stream: bool) -> UpstreamReply:
        """POST ``body``; a stream's reply is returned as soon as its status is known."""
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        try:
            reply = await self._pool.post(path, orjson.dumps(body))
        except ConnectError as exc:
            raise ConnectFailed(f"upstream {self.name} could not be reached: {exc}") from None
        except ReadTimeout:
            raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from None
        except HttpError as exc:
            raise UpstreamError(f"upstream {self.name} failed: {exc}") from None
        if not stream or reply.status >= 400:
            try:
                data = await reply.read()
            except ReadTimeout:
                raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from None
            except HttpError as exc:
                raise UpstreamError(f"upstream {self.name} broke its reply: {exc}") from None
            return UpstreamReply(reply.status, data)
        return UpstreamReply(reply.status, chunks=_chunks(self.name, reply), close=reply.aclose)


async def _chunks(name: str, reply: Reply) -> AsyncIterator[bytes]:
    try:
        async for chunk in reply.chunks():
            yield chunk
    except ReadTimeout:
        raise UpstreamTimeout(f"upstream {name} stalled mid-stream") from None
    except HttpError as exc:
        raise UpstreamError(f"upstream {name} broke the stream: {exc}") from None
