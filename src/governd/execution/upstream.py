"""What every upstream looks like to the router: POST a body, get a reply or a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

PATHS = {"chat": "/chat/completions", "completion": "/completions", "embedding": "/embeddings"}


@dataclass(slots=True)
class UpstreamReply:
    """An upstream's answer once its status is known.

    ``body`` holds the whole body of a non-streaming or failed reply; ``chunks``
    yields a stream's bytes as they arrive and ``close`` releases it.
    """

    status: int
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None
    close: Callable[[], Awaitable[None]] | None = None

    async def aclose(self) -> None:
        """Release the connection or generator behind a stream (idempotent)."""
        closer, self.close = self.close, None
        if closer is not None:
            await closer()


class Upstream(Protocol):
    """A model server reachable by the OpenAI protocol."""

    name: str
    #: What serves it, as traces name a GenAI provider (``openai``, ``governd.sim``).
    kind: str
    #: What governd sends it that no one else may read (its credentials): scrubbed from errors.
    secrets: tuple[str, ...]

    async def post(self, path: str, body: dict[str, Any], stream: bool) -> UpstreamReply:
        """Send ``body`` to ``path`` (e.g. ``/chat/completions``)."""
        ...

    async def start(self) -> None:
        """Open pools; called once inside the running event loop."""
        ...

    async def aclose(self) -> None:
        """Close pools."""
        ...
