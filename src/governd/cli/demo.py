"""``governd demo``: a short multi-tenant workload through a real server, then what it cost.

It starts ``governd serve`` as a child process on a free port with a throwaway
ledger, creates keys through the admin API, drives chat (streaming and not),
completions and embeddings with the official ``openai`` SDK (some of them
refused by policy or with a revoked key, on purpose), and prints a table per
principal from the ledger.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from governd.admin_client import AdminClient
from governd.demo_jobs import run_gpu_jobs
from governd.launcher import governd_server

SYSTEM_PROMPT = (
    "You are the support assistant of Acme Corp. Answer briefly and politely. "
    "Never reveal internal information. Escalate billing disputes to a human. " * 8
)
TENANTS = ["research/agents", "research/evals", "support/chatbot", "platform"]
CONCURRENCY = 16

Job = Callable[[openai.AsyncOpenAI, int], Awaitable[None]]


def _jobs(rng: random.Random) -> dict[str, list[tuple[Job, int]]]:
    """Per tenant: (job, weight). Each job makes one request."""

    async def agent_step(client: openai.AsyncOpenAI, i: int) -> None:
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": f"Plan step {i % 5} of task {i // 5}."}],
            stream=True,
            extra_headers={"x-governd-run": f"run-{i // 5}"},
        )
        async for _ in stream:
            pass

    async def eval_completion(client: openai.AsyncOpenAI, i: int) -> None:
        await client.completions.create(model="gpt-4o-mini", prompt=f"Q{i}: 2+2=", max_tokens=16)

    async def embed(client: openai.AsyncOpenAI, i: int) -> None:
        docs = [f"document {i}-{j} " * rng.randint(5, 40) for j in range(4)]
        await client.embeddings.create(model="text-embedding-3-small", input=docs)

    async def support_chat(client: openai.AsyncOpenAI, i: int) -> None:
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Ticket {i}: my order has not arrived."},
            ],
        )

    async def support_big_model(client: openai.AsyncOpenAI, i: int) -> None:
        # support may only use gpt-4o-mini: governd refuses this with 403 policy_denied.
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "escalate"}]
        )

    return {
        "research/agents": [(agent_step, 3)],
        "research/evals": [(eval_completion, 2), (embed, 1)],
        "support/chatbot": [(support_chat, 4), (support_big_model, 1)],
        "platform": [(embed, 1)],
    }


async def _drive(url: str, keys: dict[str, str], revoked: str, total: int, console: Console) -> int:
    rng = random.Random(7)
    jobs = _jobs(rng)
    clients = {
        t: openai.AsyncOpenAI(base_url=url + "/v1", api_key=k, max_retries=0)
        for t, k in keys.items()
    }
    clients["revoked"] = openai.AsyncOpenAI(base_url=url + "/v1", api_key=revoked, max_retries=0)
    plan: list[tuple[str, Job]] = []
    for i in range(total):
        tenant = TENANTS[i % len(TENANTS)]
        choices, weights = zip(*jobs[tenant], strict=True)
        plan.append((tenant, rng.choices(choices, weights)[0]))
    plan[total // 2] = ("revoked", jobs["support/chatbot"][0][0])
    gate = asyncio.Semaphore(CONCURRENCY)
    refused = 0

    async def one(i: int, tenant: str, job: Job, progress: Progress, task: TaskID) -> None:
        nonlocal refused
        async with gate:
            try:
                await job(clients[tenant], i)
            except openai.APIStatusError:
                refused += 1
            progress.advance(task)

    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("requests", total=total)
        await asyncio.gather(*(one(i, t, j, progress, task) for i, (t, j) in enumerate(plan)))
    for client in clients.values():
        await client.close()
    return refused


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="Ledger, per principal")
    table.add_column("principal", no_wrap=True)
    for col in ("requests", "in tok", "cached", "out tok", "USD", "errors"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            str(r["principal"] or "(no valid key)"),
            str(r["requests"]),
            f"{r['input_tokens']:,}",
            f"{r['cached_tokens']:,}",
            f"{r['output_tokens']:,}",
            f"{float(str(r['cost_usd'])):.6f}",
            str(r["errors"]),
        )
    return table


def _jobs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="GPU jobs")
    for col in ("job", "queue", "gpus", "status", "preempted", "waited s", "device-s", "USD"):
        left = col in ("job", "queue", "status", "preempted")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for j in rows:
        table.add_row(
            j["id"],
            j["queue"],
            str(j["gpus"]),
            j["status"],
            "; ".join(
                e["detail"].split(" by ")[0] for e in j["events"] if e["event"] == "preempted"
            )
            or "-",
            f"{j['queue_wait_s']:.1f}",
            f"{j['device_seconds']:.1f}",
            f"{j['cost_usd']:.4f}",
        )
    return table


def run_demo(config: str | None, total: int) -> int:
    """Run the demo; returns the exit status."""
    # Piped output (CI logs) would otherwise wrap at 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="governd-demo-") as tmp:
        console.print(
            "[bold]governd demo[/]: starting a server on the embedded defaults (sim upstreams)"
        )
        admin_key = "adm-" + secrets.token_urlsafe(16)
        with governd_server(Path(tmp), Path(config) if config else None, admin_key) as served:
            url = served.url
            admin = AdminClient(url, admin_key)
            keys = {
                t: admin.call("POST", "/admin/v1/keys", {"principal": t, "name": "demo"})["key"]
                for t in TENANTS
            }
            spare = admin.call(
                "POST", "/admin/v1/keys", {"principal": "platform", "name": "to-revoke"}
            )
            admin.call("DELETE", f"/admin/v1/keys/{spare['id']}")
            console.print(
                f"server {url}; {len(keys)} keys created, one revoked; sending {total} requests"
            )
            refused = asyncio.run(_drive(url, keys, spare["key"], total, console))
            rows = admin.call("GET", "/admin/v1/ledger/summary")["principals"]
            console.print(_table(rows))
            if config is None:
                console.print(
                    "GPU jobs on the declared 8-GPU box: a batch training job takes all 8 "
                    "(6 its own, 2 borrowed); a critical platform job reclaims its 2"
                )
                console.print(_jobs_table(run_gpu_jobs(admin, str(Path(tmp) / "trained-once"))))
    elapsed = time.monotonic() - started
    console.print(
        f"{total} requests in {elapsed:.1f} s; {refused} refused on purpose "
        "(support may not use gpt-4o: 403 policy_denied; a revoked key: 401)."
    )
    console.print(
        "\n[bold]Next[/]: run your own server with [cyan]GOVERND_ADMIN_KEY=secret governd serve[/], "
        "create a key with [cyan]governd keys create --principal research/agents[/], point the openai "
        "SDK at [cyan]http://127.0.0.1:8420/v1[/], and watch [cyan]governd ledger tail -f[/]; "
        "queue a GPU job with [cyan]governd jobs submit --queue training --gpus 2 "
        "--principal research -- CMD[/]. "
        "examples/governd.yaml shows every config section."
    )
    return 0
