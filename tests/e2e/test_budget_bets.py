"""Bets sized from outcomes, end to end: a burst of streams spends a tight budget, never past it.

The budget affords ~20 calls at their real size but only one at its worst
case (1,024 tokens). Without sizing, 150 concurrent streams would spend ~5% of
it; with holds sized from recorded outputs and topped up as replies grow, the
burst spends at least 90% of it, streamed or not (a call the client wants
whole is streamed from the upstream and handed over whole), a few replies are cut at the budget's end
(``finish_reason: length``, recorded as ``cut_by_budget``) and the ledger's
spend never passes the limit.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, governd_server
from tests.conftest import write_yaml

ADMIN = "adm-bets"
LIMIT = 1.2
CONFIG = f"""
principals:
  org: acme
  teams:
    warm: {{}}
    tight: {{budgets: [{{unit: usd, period: day, limit: {LIMIT}}}]}}
    whole: {{budgets: [{{unit: usd, period: day, limit: {LIMIT}}}]}}
upstreams: {{sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 2000, max_concurrency: 256}}}}
models:
  chat:
    deployments: [{{upstream: sim, model: s}}]
    pricing: {{input: 0, output: 1000}}
    default_max_tokens: 1024
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("bets")
    with governd_server(tmp, write_yaml(tmp / "governd.yaml", CONFIG), ADMIN) as served:
        yield served


async def burst(url: str, warm: str, tight: str, n: int, stream: bool = True) -> Counter[str]:
    w = openai.AsyncOpenAI(base_url=url + "/v1", api_key=warm, max_retries=0)
    for i in range(30):  # outcomes to size bets from (the model's, across principals)
        stream = await w.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": f"warm {i}"}], stream=True
        )
        async for _ in stream:
            pass
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=tight, max_retries=0)
    seen: Counter[str] = Counter()

    async def one(i: int) -> None:
        messages: Any = [{"role": "user", "content": f"call {i}"}]
        try:
            if stream:
                found = await client.chat.completions.create(
                    model="chat", messages=messages, stream=True
                )
                finish = None
                async for chunk in found:
                    if chunk.choices and chunk.choices[0].finish_reason:
                        finish = chunk.choices[0].finish_reason
            else:
                reply = await client.chat.completions.create(model="chat", messages=messages)
                finish = reply.choices[0].finish_reason
                assert reply.usage is not None and reply.choices[0].message.content
                assert reply.object == "chat.completion"
            seen["cut" if finish == "length" else "whole"] += 1
        except openai.APIStatusError as exc:
            seen[f"refused {exc.status_code}"] += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    await w.close()
    await client.close()
    return seen


@pytest.mark.parametrize(("team", "stream"), [("tight", True), ("whole", False)])
def test_a_burst_spends_at_least_90_percent_of_a_tight_budget_and_never_more(
    server: Served, team: str, stream: bool
) -> None:
    admin = AdminClient(server.url, ADMIN)
    warm = admin.call("POST", "/admin/v1/keys", {"principal": "warm"})["key"]
    tight = admin.call("POST", "/admin/v1/keys", {"principal": team})["key"]
    seen = asyncio.run(burst(server.url, warm, tight, 150, stream))
    (budget,) = admin.call("GET", "/admin/v1/budgets", principal=team)["budgets"]
    assert 0.9 * LIMIT <= budget["spent"] <= LIMIT, (budget, seen)
    assert budget["reserved"] == pytest.approx(0, abs=1e-9)
    # The budget affords ~20 replies: at least half of them whole, the last few cut. How many
    # are cut depends on how many replies grow at once as the budget fills (the machine's pace).
    assert seen["whole"] >= 10 and seen["cut"] >= 1 and sum(seen.values()) == 150, seen
    entries = admin.call("GET", "/admin/v1/ledger", principal=team, limit=1000)["entries"]
    assert sum(e["cost_usd"] for e in entries) <= LIMIT
    cut = [e for e in entries if e["error_code"] == "cut_by_budget"]
    assert len(cut) == seen["cut"] and all(e["status"] == 200 for e in cut)
    assert all("cut_by_budget: reply ended at" in e["reasons"] for e in cut)
    assert "Traceback" not in server.output()
