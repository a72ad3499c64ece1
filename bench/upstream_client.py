"""Upstream client: governd's HTTP/1.1 pool vs aiohttp's client, back to back and after idle gaps.

Usage: python bench/upstream_client.py [--calls 2000]

The clients POST a chat request to governd's fake OpenAI server (on CPU 1)
from one process pinned to CPU 0, one call at a time, on uvloop as governd
serves. "after 20 ms idle" sleeps before each call, as a gateway waits on a
model: the CPU's caches go cold, and the code a call runs costs more. CPU is
the client process's user+system time per call. Ratios are what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import uvloop
import yarl

from governd.execution.http_client import HttpPool
from governd.server.launcher import free_port, serve_process

BODY = {"model": "ok", "messages": [{"role": "user", "content": "Say hello."}]}
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
Call = Callable[[], Awaitable[None]]


async def governd_pool(base: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    pool = HttpPool(base, HEADERS, 64, 5.0, 30.0)

    async def call() -> None:
        reply = await pool.post("/chat/completions", orjson.dumps(BODY))
        orjson.loads(await reply.read())

    return call, pool.aclose


async def aiohttp_session(base: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(headers=HEADERS, skip_auto_headers=("User-Agent",))
    url = yarl.URL(base + "/chat/completions")

    async def call() -> None:
        async with session.post(url, data=orjson.dumps(BODY)) as resp:
            orjson.loads(await resp.read())

    return call, session.close


async def measure(call: Call, calls: int, gap_s: float) -> tuple[float, float]:
    """p50 latency (µs) and CPU per call (µs)."""
    for _ in range(50):
        await call()
    times = []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(calls):
        if gap_s:
            await asyncio.sleep(gap_s)
        start = time.perf_counter_ns()
        await call()
        times.append((time.perf_counter_ns() - start) / 1000)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / calls * 1e6
    return statistics.median(times), cpu


async def run(base: str, calls: int) -> None:
    print("| client | p50 back to back | CPU/call | p50 after 20 ms idle |")
    print("|---|--:|--:|--:|")
    for name, make in (("governd HttpPool", governd_pool), ("aiohttp 3.14", aiohttp_session)):
        call, close = await make(base)
        hot, cpu = await measure(call, calls, 0.0)
        cold, _ = await measure(call, max(100, calls // 10), 0.02)
        print(f"| {name} | {hot:.0f} µs | {cpu:.0f} µs | {cold:.0f} µs |")
        await close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "fake.log"
    fake = ["governd.testing.fake_upstream", "--port", str(port)]
    with serve_process(fake, "/v1/models", port, log, prefix=("taskset", "-c", "1")) as served:
        os.sched_setaffinity(0, {0})
        uvloop.run(run(served.url + "/v1", args.calls))


if __name__ == "__main__":
    main()
