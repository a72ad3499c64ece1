"""Redis goes away under a running governd: hard budgets fail closed, and come back whole.

A real ``governd serve`` on a redis-server of its own (no persistence, as
Redis runs by default in containers). While Redis is down a call gets a 503
``state_unavailable`` with its request id and a ledger entry; once Redis is
back with nothing in memory, every budget window is seeded from the ledger
again, so the team's spend is what it was, not zero.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import openai
import pytest
import redis

from governd import tokens
from governd.cli.admin_client import AdminClient
from governd.server.launcher import free_port, governd_server
from governd.testing.redis import redis_server
from tests.conftest import entry_of, write_yaml

ADMIN = "adm-state-faults"
MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
OUT = 20
COST = (tokens.count_messages(MESSAGES) * 3.0 + OUT * 15.0) / 1e6
AFFORDS = 10
CONFIG = f"""
principals:
  org: acme
  teams:
    capped:
      budgets: [{{unit: usd, period: day, limit: {COST * (AFFORDS + 0.5)!r}}}]
upstreams:
  sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000, prefix_cache_tokens: 0,
         output_tokens: [{OUT}, {OUT}]}}
ledger: {{flush_ms: 5}}
models:
  m:
    deployments: [{{upstream: sim, model: sim}}]
    pricing: {{input: 3.0, output: 15.0}}
"""


def call(client: openai.OpenAI) -> str:
    """One call: ``ok``, or the error code it was refused with."""
    try:
        client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=OUT)  # type: ignore[arg-type]
    except openai.APIStatusError as exc:
        return str(exc.code)
    return "ok"


def test_redis_down_fails_closed_and_back_empty_resets_no_budget(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_yaml(tmp_path / "governd.yaml", CONFIG)
    env = {"GOVERND_STATE": f"redis://127.0.0.1:{port}/0"}
    redis = contextlib.ExitStack()
    redis.enter_context(redis_server(tmp_path, port))
    with redis, governd_server(tmp_path, cfg, ADMIN, env=env) as served:
        admin = AdminClient(served.url, ADMIN)
        client = openai.OpenAI(
            base_url=served.url + "/v1",
            api_key=admin.call("POST", "/admin/v1/keys", {"principal": "capped"})["key"],
            max_retries=0,
        )
        assert [call(client) for _ in range(6)] == ["ok"] * 6
        redis.close()  # Redis dies
        with pytest.raises(openai.APIStatusError) as down:
            client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=OUT)  # type: ignore[arg-type]
        assert down.value.status_code == 503 and down.value.code == "state_unavailable"
        refused = entry_of(admin, down.value.response.headers["x-governd-request-id"])
        assert refused["status"] == 503 and refused["decision"] == "deny"
        with redis_server(tmp_path, port):  # back, with nothing in memory
            results = [call(client) for _ in range(AFFORDS)]
        assert results == ["ok"] * (AFFORDS - 6) + ["budget_exceeded"] * 6, results


def test_a_redis_that_stops_answering_fails_closed_instead_of_hanging(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_yaml(tmp_path / "governd.yaml", CONFIG)
    env = {"GOVERND_STATE": f"redis://127.0.0.1:{port}/0"}
    with redis_server(tmp_path, port) as url, governd_server(tmp_path, cfg, ADMIN, env=env) as s:
        admin = AdminClient(s.url, ADMIN)
        key = admin.call("POST", "/admin/v1/keys", {"principal": "capped"})["key"]
        # The client gives up long before Redis answers again: a hang fails the test.
        client = openai.OpenAI(base_url=s.url + "/v1", api_key=key, max_retries=0, timeout=20)
        assert call(client) == "ok"
        raw = redis.Redis.from_url(url)
        raw.client_pause(60_000, all=False)  # every write (every reservation) waits a minute
        try:
            assert call(client) == "state_unavailable"
        finally:
            raw.client_unpause()
            raw.close()
        assert call(client) == "ok", "answering again: served again"
