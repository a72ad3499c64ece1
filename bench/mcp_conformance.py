"""The official MCP conformance suite against its fixture directly, then through governd's /mcp.

Starts the ``everything-server`` fixture (from the ``mcp`` sdist, ``--fixture
DIR``), a real ``governd serve`` with it as an upstream MCP server, and a
small proxy that adds a key's ``Authorization`` header (the suite sends
none); runs ``../shared/external/mcp-conformance.sh`` against each and prints
both summaries and the scenarios that fail only through governd.

    python bench/mcp_conformance.py --fixture mcp-2.3.0/examples/servers/everything-server
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, web

from governd.cli.admin_client import AdminClient
from governd.server.launcher import free_port, governd_server, serve_process

ADMIN = "adm-mcp-conformance"
HOP = {"host", "content-length", "transfer-encoding", "connection"}


def proxy(target: str, key: str, port: int) -> threading.Thread:
    """A proxy on ``port`` that forwards everything to ``target`` with ``key``, streaming."""

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        headers["authorization"] = f"Bearer {key}"
        async with (
            ClientSession(timeout=ClientTimeout(total=None)) as http,
            http.request(
                request.method, target + request.path_qs, headers=headers, data=await request.read()
            ) as up,
        ):
            out = web.StreamResponse(
                status=up.status,
                headers={k: v for k, v in up.headers.items() if k.lower() not in HOP},
            )
            await out.prepare(request)
            with contextlib.suppress(ConnectionResetError):  # the suite hangs up on SSE streams
                async for chunk in up.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
            return out

    def run() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=False)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def suite(url: str, script: Path) -> str:
    """The suite's output against ``url``."""
    done = subprocess.run(["bash", str(script), url], capture_output=True, text=True)
    return done.stdout + done.stderr


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixture", required=True, type=Path)
    parser.add_argument(
        "--script", type=Path, default=here.parent / "shared/external/mcp-conformance.sh"
    )
    args = parser.parse_args()
    fixture_port, proxy_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(args.fixture.resolve())}
    cmd = ["mcp_everything_server.server", "--port", str(fixture_port)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_process(
            cmd, "/mcp", fixture_port, Path(tmp) / "fixture.log", env, (), any_status=True
        ),
    ):
        fixture = f"http://127.0.0.1:{fixture_port}/mcp"
        direct = suite(fixture, args.script)
        cfg = Path(tmp) / "governd.yaml"
        cfg.write_text(
            "principals: {org: acme, teams: {t: {}}}\n"
            f"mcp_servers: {{everything: {{transport: http, url: '{fixture}'}}}}\n"
        )
        with governd_server(Path(tmp), cfg, ADMIN) as served:
            key = AdminClient(served.url, ADMIN).call("POST", "/admin/v1/keys", {"principal": "t"})[
                "key"
            ]
            proxy(served.url, key, proxy_port)
            through = suite(f"http://127.0.0.1:{proxy_port}/mcp", args.script)
    print("directly:      ", (re.findall(r"Total: .*", direct) or ["no summary"])[-1])
    print("through governd:", (re.findall(r"Total: .*", through) or ["no summary"])[-1])
    only = sorted(_failing(through) - _failing(direct))
    print("failing only through governd:", ", ".join(only))


def _failing(out: str) -> set[str]:
    """The scenarios the suite's output marks failed."""
    return set(re.findall(r"✗ ([\w-]+)", out))


if __name__ == "__main__":
    main()
