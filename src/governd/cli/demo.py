"""``governd demo``: a short multi-tenant workload through a real server, then what it cost.

It starts ``governd serve`` as a child process on a free port with a throwaway
ledger, creates keys through the admin API, drives chat (streaming and not),
completions and embeddings with the official ``openai`` SDK (some of them
refused by policy or with a revoked key, on purpose), and prints a table per
principal from the ledger.

On the embedded defaults it drives four tenants with a curated mix, then two
GPU jobs. With ``--config`` it drives that config's own principals (up to four
projects or teams) with the models each may call: chat, streamed every other
time, and embeddings. A config in which no principal may call a model is
refused in one line.
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

from governd.cli.admin_client import AdminClient
from governd.cli.demo_jobs import run_gpu_jobs
from governd.cli.demo_slos import run_slo_drill
from governd.cli.explain import render
from governd.config import GovernConfig, ProjectConfig, TeamConfig, load_config
from governd.errors import GovernError
from governd.governance.principals import PrincipalTree
from governd.server.launcher import governd_server

SYSTEM_PROMPT = (
    "You are the support assistant of Acme Corp. Answer briefly and politely. "
    "Never reveal internal information. Escalate billing disputes to a human. " * 8
)
CONCURRENCY = 16

Job = Callable[[openai.AsyncOpenAI, int], Awaitable[None]]
#: Per tenant (``TEAM[/PROJECT]``): the jobs it runs, each with its weight. Each job is one request.
Plan = dict[str, list[tuple[Job, int]]]


class DemoRefused(GovernError):
    """A config the demo has nothing to drive on."""

    code = "demo_refused"


def _chat(model: str) -> Job:
    async def chat(client: openai.AsyncOpenAI, i: int) -> None:
        messages: Any = [{"role": "user", "content": f"Request {i}: summarise our week."}]
        if i % 2:
            await client.chat.completions.create(model=model, messages=messages, max_tokens=64)
            return
        stream = await client.chat.completions.create(
            model=model, messages=messages, max_tokens=64, stream=True
        )
        async for _ in stream:
            pass

    return chat


def _embed(model: str) -> Job:
    async def embed(client: openai.AsyncOpenAI, i: int) -> None:
        await client.embeddings.create(model=model, input=[f"document {i}", f"note {i}"])

    return embed


def config_plan(cfg: GovernConfig, source: str) -> Plan:
    """What the demo drives on a config of its own: up to four principals, their models."""
    tree = PrincipalTree(cfg)
    leaves = [
        node.path.split("/", 1)[1]
        for node in cfg.principals.walk()
        if isinstance(node.config, ProjectConfig)
        or (isinstance(node.config, TeamConfig) and not node.config.projects)
    ]
    plan: Plan = {}
    for spec in leaves:
        allowed = sorted(tree.models_for(tree.resolve(spec)))
        jobs = [(_embed(m) if cfg.models[m].kind == "embedding" else _chat(m), 1) for m in allowed]
        if jobs:
            plan[spec] = jobs
        if len(plan) == 4:
            break
    if not plan:
        raise DemoRefused(
            f"{source}: no team or project in it may call a model, so the demo has nothing to "
            "send; add `models:` and teams, or run `governd demo` on the embedded defaults"
        )
    return plan


def _jobs(rng: random.Random) -> Plan:
    """The embedded defaults' plan: agents, evals, a support bot (refused now and then), embeds."""

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


async def _drive(
    url: str, plan: Plan, keys: dict[str, str], revoked: str, total: int, console: Console
) -> int:
    rng = random.Random(7)
    tenants = list(plan)
    clients = {
        t: openai.AsyncOpenAI(base_url=url + "/v1", api_key=k, max_retries=0)
        for t, k in keys.items()
    }
    clients["revoked"] = openai.AsyncOpenAI(base_url=url + "/v1", api_key=revoked, max_retries=0)
    order: list[tuple[str, Job]] = []
    for i in range(total):
        tenant = tenants[i % len(tenants)]
        choices, weights = zip(*plan[tenant], strict=True)
        order.append((tenant, rng.choices(choices, weights)[0]))
    order[total // 2] = ("revoked", order[total // 2][1])
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
        await asyncio.gather(*(one(i, t, j, progress, task) for i, (t, j) in enumerate(order)))
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
    plan = _jobs(random.Random(7)) if config is None else config_plan(load_config(config), config)
    with tempfile.TemporaryDirectory(prefix="governd-demo-") as tmp:
        on = config or "the embedded defaults (sim upstreams)"
        console.print(f"[bold]governd demo[/]: starting a server on {on}")
        admin_key = "adm-" + secrets.token_urlsafe(16)
        with governd_server(Path(tmp), Path(config) if config else None, admin_key) as served:
            url = served.url
            admin = AdminClient(url, admin_key)
            keys = {
                t: admin.call("POST", "/admin/v1/keys", {"principal": t, "name": "demo"})["key"]
                for t in plan
            }
            spare = admin.call(
                "POST", "/admin/v1/keys", {"principal": next(iter(plan)), "name": "to-revoke"}
            )
            admin.call("DELETE", f"/admin/v1/keys/{spare['id']}")
            console.print(
                f"server {url}; {len(keys)} keys created, one revoked; sending {total} requests"
            )
            refused = asyncio.run(_drive(url, plan, keys, spare["key"], total, console))
            rows = admin.call("GET", "/admin/v1/ledger/summary")["principals"]
            console.print(_table(rows))
            if config is None:
                console.print(
                    "GPU jobs on the declared 8-GPU box: a batch training job takes all 8 "
                    "(6 its own, 2 borrowed); a critical platform job reclaims its 2"
                )
                console.print(_jobs_table(run_gpu_jobs(admin, str(Path(tmp) / "trained-once"))))
                console.print("\n[bold]The loop[/]: a deployment slows down")
                for line in run_slo_drill(admin, url, keys["support/chatbot"]):
                    console.print(f"  {line}")
                console.print("\n[bold]governd explain support/chatbot[/]")
                explained = admin.call("GET", "/admin/v1/explain/support/chatbot")
                for line in render(explained):
                    console.print(f"  {line}", markup=False, highlight=False)
    elapsed = time.monotonic() - started
    why = (
        "support may not use gpt-4o: 403 policy_denied; a revoked key: 401"
        if config is None
        else "a revoked key: 401; the rest by your config's policies, budgets and limits"
    )
    console.print(f"{total} requests in {elapsed:.1f} s; {refused} refused ({why}).")
    console.print(
        "\n[bold]Next[/]: run your own server with [cyan]GOVERND_ADMIN_KEY=secret governd serve[/], "
        "create a key with [cyan]governd keys create --principal research/agents[/], point the openai "
        "SDK at [cyan]http://127.0.0.1:8420/v1[/], and watch [cyan]governd ledger tail -f[/]; "
        "queue a GPU job with [cyan]governd jobs submit --queue training --gpus 2 "
        "--principal research -- CMD[/]. "
        "examples/governd.yaml shows every config section."
    )
    return 0
