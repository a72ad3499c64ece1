"""Bets sized from outcomes: how much of a tight budget a burst of 1,000 concurrent calls spends.

The budget ($1.20 a day) affords ~20 calls at their real size (the sim's
replies are 16-96 tokens, $1 per 1,000 output tokens) but one at its worst
case (``default_max_tokens`` 1,024). Each row starts fresh servers (one, or
two sharing Redis and one ledger), warms their output sizes with 30 calls of
another principal, then sends 1,000 concurrent calls at the budget, split
across the replicas, and reads the budget back. Sizing off is the blind worst
case governd reserved before; with it, a call the client wants whole is streamed
from the upstream inside governd, so it is metered like a stream. Prints a table and exits 0.

    python bench/bets.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai

from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, governd_server
from governd.testing.redis import redis_server

ADMIN = "adm-bench"
LIMIT = 1.2
CONFIG = """
governance: {{sizing: {{enabled: {sizing}}}}}
state: {state}
principals:
  org: acme
  teams:
    warm: {{}}
    tight: {{budgets: [{{unit: usd, period: day, limit: {limit}}}]}}
upstreams: {{sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 2000, max_concurrency: 512}}}}
models:
  chat:
    deployments: [{{upstream: sim, model: s}}]
    pricing: {{input: 0, output: 1000}}
    default_max_tokens: 1024
"""


@contextlib.contextmanager
def servers(tmp: Path, replicas: int, sizing: bool) -> Iterator[list[Served]]:
    with contextlib.ExitStack() as stack:
        state = stack.enter_context(redis_server(tmp)) if replicas > 1 else "memory"
        config = tmp / "governd.yaml"
        config.write_text(CONFIG.format(sizing=str(sizing).lower(), state=state, limit=LIMIT))
        yield [stack.enter_context(governd_server(tmp, config, ADMIN)) for _ in range(replicas)]


async def call(client: openai.AsyncOpenAI, i: int, stream: bool, max_tokens: int | None) -> str:
    extra = {"max_tokens": max_tokens} if max_tokens else {}
    messages = [{"role": "user", "content": f"call {i}"}]
    try:
        if not stream:
            reply = await client.chat.completions.create(model="chat", messages=messages, **extra)  # type: ignore[arg-type, call-overload]
            return "cut" if reply.choices[0].finish_reason == "length" else "whole"
        found = await client.chat.completions.create(
            model="chat", messages=messages, stream=True, **extra
        )  # type: ignore[arg-type, call-overload]
        finish = None
        async for chunk in found:
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        return "cut" if finish == "length" else "whole"
    except openai.APIStatusError:
        return "refused"


async def burst(
    urls: list[str], keys: dict[str, str], calls: int, stream: bool, max_tokens: int | None
) -> Counter[str]:
    for url in urls:  # each replica learns its own output sizes
        warm = openai.AsyncOpenAI(base_url=url + "/v1", api_key=keys["warm"], max_retries=0)
        for i in range(30):
            await call(warm, i, stream, max_tokens)
        await warm.close()
    clients = [
        openai.AsyncOpenAI(base_url=url + "/v1", api_key=keys["tight"], max_retries=0, timeout=120)
        for url in urls
    ]
    done = await asyncio.gather(
        *(call(clients[i % len(clients)], i, stream, max_tokens) for i in range(calls))
    )
    for client in clients:
        await client.close()
    return Counter(done)


def row(replicas: int, sizing: bool, stream: bool, max_tokens: int | None, calls: int) -> str:
    with (
        tempfile.TemporaryDirectory(prefix="governd-bets-") as tmp,
        servers(Path(tmp), replicas, sizing) as up,
    ):
        admin = AdminClient(up[0].url, ADMIN)
        keys = {
            p: admin.call("POST", "/admin/v1/keys", {"principal": p})["key"]
            for p in ("warm", "tight")
        }
        seen = asyncio.run(burst([s.url for s in up], keys, calls, stream, max_tokens))
        (budget,) = admin.call("GET", "/admin/v1/budgets", principal="tight")["budgets"]
    ratio = budget["spent"] / LIMIT
    flag = "" if ratio <= 1 + 1e-9 else "  OVER"
    return (
        f"| {replicas} | {'on' if sizing else 'off'} | {'yes' if stream else 'no'} | "
        f"{max_tokens or '-'} | {seen['whole']} | {seen['cut']} | {seen['refused']} | "
        f"{ratio:.3f}{flag} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    print(f"{args.calls} concurrent calls against ${LIMIT} a day (~20 real calls, 1 worst case)\n")
    print("| replicas | sizing | streamed | max_tokens | whole | cut | refused | spent/limit |")
    print("|--:|---|---|--:|--:|--:|--:|--:|")
    for replicas in (1, 2):
        for stream in (True, False):
            for max_tokens in (None, 128):
                for sizing in (False, True):
                    print(row(replicas, sizing, stream, max_tokens, args.calls), flush=True)


if __name__ == "__main__":
    main()
