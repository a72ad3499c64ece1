"""Soak: a real governd under mixed traffic at a fixed rate; its RSS and open files over time.

Model calls, streams, tool calls (the official MCP SDK over ``/mcp``) and GPU
jobs (the local executor, one short process each) at ``--rate`` actions a
second for ``--minutes``; the server's RSS and open file descriptors are read
from ``/proc`` every ``--every`` seconds. Then ``--streams`` streams are held
open at once and the peak RSS is read. Prints a table and the growth.

    python bench/soak.py [--minutes 30] [--rate 40] [--streams 1000] [--tokenizer bytes]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2
import openai
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from governd.cli.admin_client import AdminClient
from governd.server.launcher import governd_server

ADMIN = "adm-soak"
CONFIG = f"""
principals: {{org: acme, teams: {{t: {{budgets: [{{unit: usd, period: day, limit: 1000000}}]}}}}}}
upstreams:
  sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 2000, max_concurrency: 2048}}
  slow: {{kind: sim, prefill_tps: 1000000, decode_tps: 2, max_concurrency: 2048,
          output_tokens: [60, 60]}}
models:
  m: {{deployments: [{{upstream: sim, model: sim}}], pricing: {{input: 1, output: 2}}}}
  held: {{deployments: [{{upstream: slow, model: slow}}]}}
mcp_servers:
  notes: {{transport: stdio, command: {sys.executable}, args: [-m, governd.testing.mcp_server]}}
compute:
  flavors: {{cpu: {{price_per_hour: 1}}}}
  nodes: {{box: {{devices: [{{flavor: cpu, count: 8}}]}}}}
  queues: {{q: {{principals: [t], quotas: {{cpu: {{nominal: 8}}}}}}}}
  default_max_runtime_s: 30
ledger: {{flush_ms: 20}}
"""
MSG: Any = [{"role": "user", "content": "hello there"}]


def sample(pid: int) -> tuple[float, float, int]:
    """The process's resident memory and its anonymous part (MB), and open file descriptors."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss, anon = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon"))
    return rss, anon, len(os.listdir(f"/proc/{pid}/fd"))


async def traffic(url: str, key: str, rate: float, seconds: float, done: Counter[str]) -> None:
    """Actions at ``rate`` a second: 4 in 10 model calls, 3 streams, 2 tool calls, 1 job."""
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(url + "/mcp", http_client=http)) as mcp:
        tasks: set[asyncio.Task[None]] = set()
        start, n = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            kind = (
                "call",
                "call",
                "call",
                "call",
                "stream",
                "stream",
                "stream",
                "tool",
                "tool",
                "job",
            )[n % 10]
            task = asyncio.create_task(_one(kind, client, mcp, http, url, done))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        await asyncio.gather(*tasks)
    await client.close()


async def _one(
    kind: str,
    client: openai.AsyncOpenAI,
    mcp: Client,
    http: httpx2.AsyncClient,
    url: str,
    done: Counter[str],
) -> None:
    try:
        if kind == "call":
            await client.chat.completions.create(model="m", messages=MSG, max_tokens=16)
        elif kind == "stream":
            stream: Any = await client.chat.completions.create(
                model="m", messages=MSG, max_tokens=16, stream=True
            )
            async for _ in stream:
                pass
        elif kind == "tool":
            await mcp.call_tool("notes__read_note", {"name": "welcome"})
        else:
            body = {"queue": "q", "gpus": 1, "command": [sys.executable, "-c", "pass"]}
            (await http.post(url + "/v1/jobs", json=body)).raise_for_status()
        done[kind] += 1
    except Exception as exc:  # counted, not fatal: a soak reports what failed
        done[f"{kind} failed: {type(exc).__name__}"] += 1


async def held_streams(url: str, key: str, n: int, pid: int) -> tuple[float, int]:
    """``n`` streams open at once (a slow upstream): peak RSS and how many completed."""
    pool = httpx2.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    client = openai.AsyncOpenAI(
        base_url=url + "/v1",
        api_key=key,
        max_retries=0,
        http_client=httpx2.AsyncClient(limits=pool, timeout=300),
    )
    peak = 0.0

    async def one() -> int:
        stream: Any = await client.chat.completions.create(model="held", messages=MSG, stream=True)
        async for _ in stream:
            pass
        return 1

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    while not all(t.done() for t in tasks):
        peak = max(peak, sample(pid)[0])
        await asyncio.sleep(0.5)
    finished = sum(r for r in await asyncio.gather(*tasks, return_exceptions=True) if r == 1)
    await client.close()
    return peak, finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--every", type=float, default=60)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument(
        "--tokenizer", default="o200k_base", help="governance.tokenizer: o200k_base or bytes"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "governd.yaml"
        cfg.write_text(CONFIG + f"governance: {{tokenizer: {args.tokenizer}}}\n")
        with governd_server(Path(tmp), cfg, ADMIN) as served:
            pid = served.process.pid
            key = AdminClient(served.url, ADMIN).call("POST", "/admin/v1/keys", {"principal": "t"})[
                "key"
            ]
            done: Counter[str] = Counter()
            rows = [(0.0, *sample(pid), 0)]
            loop = asyncio.new_event_loop()
            task = loop.create_task(traffic(served.url, key, args.rate, args.minutes * 60, done))
            start = time.monotonic()
            while not task.done():
                loop.run_until_complete(asyncio.wait([task], timeout=args.every))
                rows.append((time.monotonic() - start, *sample(pid), sum(done.values())))
            task.result()
            peak, finished = loop.run_until_complete(
                held_streams(served.url, key, args.streams, pid)
            )
            loop.close()
    print(
        f"soak: {args.minutes:g} min at {args.rate:g} actions/s, tokenizer {args.tokenizer}; {dict(done)}"
    )
    print("| minute | RSS MB | of which anonymous | open fds | actions |")
    print("|--:|--:|--:|--:|--:|")
    for t, rss, anon, fds, n in rows:
        print(f"| {t / 60:.1f} | {rss:.1f} | {anon:.1f} | {fds} | {n} |")
    first, last = rows[1] if len(rows) > 1 else rows[0], rows[-1]
    print(
        f"growth after the first sample: RSS {last[1] - first[1]:+.1f} MB, "
        f"fds {last[3] - first[3]:+d}"
    )
    print(f"{args.streams} streams held open at once: peak RSS {peak:.1f} MB, {finished} completed")


if __name__ == "__main__":
    main()
