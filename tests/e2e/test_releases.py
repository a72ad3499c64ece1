"""Releases end to end: a real ``governd serve`` over sim deployments told to fail at runtime.

Twenty keys call a model alias through the openai SDK; a release moves half
of them (by hashing their keys) to a canary on another sim upstream. A good
canary is promoted through every step; a failing one is rolled back at once
and the next calls are served by stable; an outage of both arms freezes the
release without blaming the canary; too little traffic keeps it paused; a
step that would not fit the budgets is refused with its numbers. Every
transition is a ledger entry, and the chain verifies after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from governd.cli.admin_client import AdminClient, AdminError
from governd.server.launcher import Served, governd_server
from tests.conftest import governd_cli, write_yaml

ADMIN = "adm-release-e2e"
CONFIG = """
principals:
  org: acme
  teams:
    t:
      budgets: [{{unit: usd, period: day, limit: {budget}}}]
upstreams:
  sim-a: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
  sim-b: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
models:
  chat:
    deployments: [{{upstream: sim-a, model: a}}]
    pricing: {{input: 10, output: 10}}
router: {{retries: 0, breaker_failures: 1000000}}
ledger: {{flush_ms: 5}}
slos:
  - name: avail
    objective: 99
    window: 1h
    sli: availability
    alerts: [{{severity: page, long: 1m, short: 5s, budget_percent: 2}}]
    no_data: null
"""
#: Checks that the sims' sub-millisecond jitter cannot fail: errors decide these tests.
ANALYSIS = {"slo": "avail", "latency": {"allowed": 5, "critical": 50}, "ttft": None}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("releases")
    cfg = write_yaml(tmp / "governd.yaml", CONFIG.format(budget=1_000_000))
    with governd_server(tmp, cfg, ADMIN) as server:
        yield server


@pytest.fixture(scope="module")
def clients(served: Served) -> list[openai.OpenAI]:
    admin = AdminClient(served.url, ADMIN)
    keys = [admin.call("POST", "/admin/v1/keys", {"principal": "t"})["key"] for _ in range(20)]
    return [openai.OpenAI(base_url=served.url + "/v1", api_key=k, max_retries=0) for k in keys]


@pytest.fixture
def admin(served: Served) -> Iterator[AdminClient]:
    client = AdminClient(served.url, ADMIN)
    yield client
    for sim in ("sim-a", "sim-b"):
        client.call("PUT", f"/admin/v1/upstreams/{sim}/faults", {})
    client.call("POST", "/admin/v1/releases/kill", {"model": "chat", "reason": "test over"})


def release(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": "chat",
        "canary": {"deployment": "sim-b/b"},
        "steps": steps,
        "analysis": ANALYSIS,
        **spec,
    }


def traffic(clients: list[openai.OpenAI], rounds: int = 1) -> list[str]:
    """One call per key per round; the deployments that served them (``failed`` for a 5xx)."""
    served = []
    for _ in range(rounds):
        for client in clients:
            try:
                reply = client.chat.completions.with_raw_response.create(
                    model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=4
                )
                served.append(reply.parse().model)
            except openai.APIStatusError as exc:
                assert exc.status_code in (502, 503), exc
                served.append("failed")
    return served


def until(
    admin: AdminClient,
    name: str,
    done: Callable[[dict[str, Any]], bool],
    clients: list[openai.OpenAI],
    timeout: float = 60,
) -> dict[str, Any]:
    """Keep every key calling until the release's status says ``done``."""
    deadline = time.monotonic() + timeout
    while not done(status := admin.call("GET", f"/admin/v1/releases/{name}")):
        assert time.monotonic() < deadline, f"not reached: {status['phase']} {status['note']}"
        traffic(clients)
    return status


def history(admin: AdminClient, name: str) -> list[str]:
    found = admin.call("GET", f"/admin/v1/releases/{name}/history?limit=100")["history"]
    return [h["operation"] for h in reversed(found)]


def test_a_good_canary_is_promoted_through_every_step(
    admin: AdminClient, clients: list[openai.OpenAI]
) -> None:
    steps = [{"set_weight": 50}, {"pause": {"min_events": 20}}, {"analysis": {}}]
    admin.call("POST", "/admin/v1/releases", release("good", steps))
    started = admin.call("POST", "/admin/v1/releases/good/start")
    assert started["phase"] == "running"
    done = until(admin, "good", lambda s: s["phase"] == "promoted", clients, timeout=120)
    assert done["weight"] == 100
    assert set(traffic(clients)) == {"b"}, "promoted: every call on the canary"
    ops = history(admin, "good")
    assert ops[:2] == ["release_created", "release_started"]
    assert ops[-1] == "release_promoted" and ops.count("release_step") == 3
    last = admin.call("GET", "/admin/v1/releases/good/history?limit=1")["history"][0]
    checks = {e["check"]: e["verdict"] for e in last["signals"]["evidence"]}
    assert checks["errors"] == "successful"


def test_a_failing_canary_is_rolled_back_and_stable_serves_the_next_calls(
    admin: AdminClient, clients: list[openai.OpenAI]
) -> None:
    admin.call(
        "POST",
        "/admin/v1/releases",
        release("bad", [{"set_weight": 50}, {"pause": {"duration": 3600}}]),
    )
    admin.call("POST", "/admin/v1/releases/bad/start")
    on_both = until(admin, "bad", lambda s: s["weight"] == 50, clients)
    assert on_both["phase"] == "running"
    assert set(traffic(clients)) == {"a", "b"}, "half the keys on each arm"
    admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"error_rate": 1.0})
    failing = time.monotonic()
    aborted = until(admin, "bad", lambda s: s["phase"] == "aborted", clients)
    took = time.monotonic() - failing
    assert aborted["weight"] == 0 and "errors" in aborted["note"]
    assert set(traffic(clients)) == {"a"}, "rolled back: every call on stable"
    assert took < 10
