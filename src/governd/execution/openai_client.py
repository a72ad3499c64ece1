"""Upstream kind ``openai``: any OpenAI-compatible server over pooled async HTTP (aiohttp).

aiohttp rather than httpx: on the gateway's hot path its client costs a
fraction of the CPU per request (measured in bench/gateway_overhead.py).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import yarl

from governd.config import OpenAIUpstream
from governd.errors import UpstreamError, UpstreamTimeout
from governd.execution.upstream import PATHS, UpstreamReply


class ConnectFailed(UpstreamError):
    """The upstream could not be reached: safe to retry, nothing was sent."""


class OpenAIClient:
    """A pooled client for one OpenAI-compatible base URL."""

    kind = "openai"

    def __init__(self, name: str, cfg: OpenAIUpstream) -> None:
        self.name = name
        base = cfg.base_url.rstrip("/")
        # Parsed once: aiohttp would otherwise parse the URL string on every request.
        self._urls = {path: yarl.URL(base + path) for path in PATHS.values()}
        self._cfg = cfg
        self._headers = {"content-type": "application/json", **cfg.headers}
        if cfg.api_key is not None:
            self._headers["authorization"] = f"Bearer {cfg.api_key.get_secret_value()}"
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Create the connection pool inside the running loop."""
        connector = aiohttp.TCPConnector(
            limit=self._cfg.max_connections, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._cfg.connect_timeout_s, sock_read=self._cfg.read_timeout_s
        )
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            connector=connector,
            timeout=timeout,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, body: dict[str, Any], stream: bool) -> UpstreamReply:
        """POST ``body``; a stream's reply is returned as soon as its status is known."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        try:
            resp = await self._session.post(self._urls[path], data=orjson.dumps(body))
        except aiohttp.ClientConnectorError:
            raise ConnectFailed(f"upstream {self.name} refused the connection") from None
        except TimeoutError:
            raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream {self.name} failed: {type(exc).__name__}") from None
        if not stream or resp.status >= 400:
            try:
                data = await resp.read()
            except TimeoutError:
                resp.close()
                raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from None
            except aiohttp.ClientError as exc:
                resp.close()
                raise UpstreamError(
                    f"upstream {self.name} broke its reply: {type(exc).__name__}"
                ) from None
            return UpstreamReply(resp.status, data)
        return UpstreamReply(resp.status, chunks=_chunks(self.name, resp), close=_closer(resp))


async def _chunks(name: str, resp: aiohttp.ClientResponse) -> Any:
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    except TimeoutError:
        raise UpstreamTimeout(f"upstream {name} stalled mid-stream") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"upstream {name} broke the stream: {type(exc).__name__}") from None


def _closer(resp: aiohttp.ClientResponse) -> Any:
    async def close() -> None:
        resp.close()

    return close
