"""Tool-call overhead: direct to an MCP server vs through governd's /mcp, sequential calls.

Usage: python bench/tools.py [--calls 400]

The upstream is governd's test MCP server over streamable HTTP; governd runs
pinned to CPU 0, the upstream and this client on CPU 1. Both paths use the
official mcp client. Prints a table and exits 0. Target: +p50 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from governd.admin_client import AdminClient
from governd.launcher import free_port, governd_server, serve_process


async def timings(url: str, headers: dict[str, str], tool: str, calls: int) -> list[float]:
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    async with Client(streamable_http_client(url, http_client=http), cache=None) as client:
        await client.list_tools()
        for _ in range(20):
            await client.call_tool(tool, {"name": "welcome"})
        out = []
        for _ in range(calls):
            start = time.perf_counter()
            await client.call_tool(tool, {"name": "welcome"})
            out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        up_args = ["governd.testing.mcp_server", "--http", str(port)]
        with serve_process(
            up_args, "/mcp", port, tmp / "up.log", prefix=["taskset", "-c", "1"], any_status=True
        ) as up:
            cfg = tmp / "governd.yaml"
            cfg.write_text(
                "principals: {org: b, teams: {b: {}}}\n"
                f'mcp_servers: {{notes: {{transport: http, url: "{up.url}/mcp"}}}}\n'
            )
            with governd_server(tmp, cfg, "adm-tools", prefix=["taskset", "-c", "0"]) as gw:
                key = AdminClient(gw.url, "adm-tools").call(
                    "POST", "/admin/v1/keys", {"principal": "b"}
                )["key"]
                direct = asyncio.run(timings(up.url + "/mcp", {}, "read_note", args.calls))
                through = asyncio.run(
                    timings(
                        gw.url + "/mcp",
                        {"authorization": f"Bearer {key}"},
                        "notes__read_note",
                        args.calls,
                    )
                )
    rows = [("direct", direct), ("governd", through)]
    print(
        f"tool call latency, {args.calls} sequential calls (governd on CPU 0; upstream and client on CPU 1)\n"
    )
    print("| path | p50 ms | p99 ms | mean ms |")
    print("|---|--:|--:|--:|")
    for name, values in rows:
        s = sorted(values)
        print(
            f"| {name} | {s[len(s) // 2]:.2f} | {s[int(len(s) * 0.99)]:.2f} | {statistics.fmean(s):.2f} |"
        )
    d, g = sorted(direct), sorted(through)
    print(f"\nadded p50: {g[len(g) // 2] - d[len(d) // 2]:+.2f} ms")


if __name__ == "__main__":
    main()
