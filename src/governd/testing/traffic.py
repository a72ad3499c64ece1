"""Concurrent chat calls through the official openai SDK: streamed and not, with and without
``max_tokens``; each call's outcome by error code (``ok`` when it completed)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import openai

MESSAGES: Any = [{"role": "user", "content": "Count to twenty, please."}]


async def one(client: openai.AsyncOpenAI, i: int, model: str, max_tokens: int) -> str:
    """Call ``i``: every other one streamed, every third without ``max_tokens``."""
    limit: Any = {} if i % 3 == 0 else {"max_tokens": max_tokens}
    try:
        if i % 2:
            stream = await client.chat.completions.create(
                model=model, messages=MESSAGES, stream=True, **limit
            )
            async for _ in stream:
                pass
        else:
            await client.chat.completions.create(model=model, messages=MESSAGES, **limit)
    except openai.APIStatusError as exc:
        return str(exc.code)
    return "ok"


async def storm(
    url: str,
    keys: Sequence[str],
    total: int,
    model: str = "m",
    max_tokens: int = 20,
    headers: dict[str, str] | None = None,
) -> Counter[str]:
    """``total`` calls at once to ``url`` (its root), spread over ``keys``: outcomes counted."""
    clients = [
        openai.AsyncOpenAI(
            base_url=url + "/v1",
            api_key=k,
            max_retries=0,
            timeout=120,
            default_headers=headers or {},
        )
        for k in keys
    ]
    calls = (one(clients[i % len(clients)], i, model, max_tokens) for i in range(total))
    found = Counter(await asyncio.gather(*calls))
    for c in clients:
        await c.close()
    return found
