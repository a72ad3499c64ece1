"""Tool-call overhead: direct to an MCP server vs through governd's /mcp, sequential calls.

Usage: python bench/tools.py [--calls 1000]

The upstream is governd's test MCP server over streamable HTTP; governd runs
pinned to CPU 0, the upstream and this client on CPU 1. Both paths use the
official mcp client. Prints a table and exits 0. Target: +p50 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from governd.cli.admin_client import AdminClient
from governd.server.launcher import free_port, governd_server, serve_process


async def timings(paths: list[tuple[str, dict[str, str], str]], calls: int) -> list[list[float]]:
    """Latencies per path, calls alternating between the paths so that both see the same noise."""
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for url, headers, tool in paths:
            http = httpx2.AsyncClient(headers=headers, timeout=30)
            client = await stack.enter_async_context(
                Client(streamable_http_client(url, http_client=http), cache=None)
            )
            await client.list_tools()
            for _ in range(20):
                await client.call_tool(tool, {"name": "welcome"})
            clients.append((client, tool))
        out: list[list[float]] = [[] for _ in paths]
        for _ in range(calls):
            for (client, tool), values in zip(clients, out, strict=True):
                start = time.perf_counter()
                await client.call_tool(tool, {"name": "welcome"})
                values.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
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
                direct, through = asyncio.run(
                    timings(
                        [
                            (up.url + "/mcp", {}, "read_note"),
                            (
                                gw.url + "/mcp",
                                {"authorization": f"Bearer {key}"},
                                "notes__read_note",
                            ),
                        ],
                        args.calls,
                    )
                )
    rows = [("direct", direct), ("governd", through)]
    print(
        f"tool call latency, {args.calls} sequential calls, alternating (governd on CPU 0; upstream and client on CPU 1)\n"
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
