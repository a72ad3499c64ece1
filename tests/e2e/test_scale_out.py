"""Three replicas on one PostgreSQL and one Redis, behind nginx round-robin, under 1,000 calls.

Calls with and without ``max_tokens``, streamed and not, from keys on three
branches of the tree arrive at once through nginx. Every budget of the tree
(the org, team ``a``, project ``b/p`` and its team) ends between 90% and 100%
spent: never over, and no more than a tenth left unusable by holds in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator

import pytest

from governd import tokens
from governd.cli.admin_client import AdminClient
from governd.ledger.signing import Signer
from governd.server.launcher import governd_server
from governd.testing.nginx import nginx_balancer
from governd.testing.postgres import PostgresCluster
from governd.testing.traffic import MESSAGES, storm
from tests.conftest import write_yaml

ADMIN = "adm-scale-out"
OUT = 20
COST = (tokens.count_messages(MESSAGES) * 3.0 + OUT * 15.0) / 1e6
A_CALLS, P_CALLS = 120, 80
RPM = 40
STEPS = 25
CONFIG = f"""
principals:
  org: scale
  budgets: [{{unit: usd, period: day, limit: {COST * (A_CALLS + P_CALLS + 0.5)!r}}}]
  teams:
    a:
      budgets: [{{unit: usd, period: day, limit: {COST * (A_CALLS + 0.5)!r}}}]
    b:
      budgets: [{{unit: usd, period: day, limit: {COST * (P_CALLS + 0.5)!r}}}]
      projects:
        p: {{budgets: [{{unit: usd, period: day, limit: {COST * (P_CALLS + 0.5)!r}}}]}}
    r: {{limits: {{rpm: {RPM}}}}}
    agents: {{run_limits: {{steps: {STEPS}}}}}
upstreams:
  sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000, max_concurrency: 512,
         prefix_cache_tokens: 0, output_tokens: [{OUT}, {OUT}]}}
ledger: {{flush_ms: 5, signing_key: signing.pem}}
models:
  m:
    deployments: [{{upstream: sim, model: sim}}]
    pricing: {{input: 3.0, output: 15.0}}
  free:
    deployments: [{{upstream: sim, model: sim}}]
"""


@pytest.fixture(scope="module")
def balanced(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster, redis_url: str
) -> Iterator[tuple[str, AdminClient]]:
    """Three replicas behind nginx: its URL, and an admin client through it."""
    tmp = tmp_path_factory.mktemp("scale-out")
    cfg = write_yaml(tmp / "governd.yaml", CONFIG)
    Signer.load(tmp / "signing.pem", create=True)
    env = {"GOVERND_STORAGE": postgres.new_database(), "GOVERND_STATE": redis_url}
    with contextlib.ExitStack() as stack:
        replicas = []
        for i in range(3):
            (tmp / f"r{i}").mkdir()
            (tmp / f"r{i}" / "signing.pem").write_bytes((tmp / "signing.pem").read_bytes())
            replicas.append(stack.enter_context(governd_server(tmp / f"r{i}", cfg, ADMIN, env=env)))
        url = stack.enter_context(
            nginx_balancer(tmp / "nginx", [r.url.removeprefix("http://") for r in replicas])
        )
        yield url, AdminClient(url, ADMIN)


def test_three_replicas_behind_nginx_spend_every_budget_to_between_90_and_100_percent(
    balanced: tuple[str, AdminClient],
) -> None:
    url, admin = balanced
    keys = {p: admin.call("POST", "/admin/v1/keys", {"principal": p})["key"] for p in ("a", "b/p")}
    a = asyncio.run(storm(url, [keys["a"]] * 2, 500, max_tokens=OUT))
    p = asyncio.run(storm(url, [keys["b/p"]] * 2, 500, max_tokens=OUT))
    shown = {
        b["principal"]: b["spent"] / b["limit"]
        for b in admin.call("GET", "/admin/v1/budgets")["budgets"]
    }
    served = Counter(
        e["id"][:16]
        for e in admin.call("GET", "/admin/v1/ledger", limit=1000)["entries"]
        if e["status"] == 200 and e["kind"] == "model_call"
    )
    assert a == {"ok": A_CALLS, "budget_exceeded": 500 - A_CALLS}, a
    assert p == {"ok": P_CALLS, "budget_exceeded": 500 - P_CALLS}, p
    for node, used in shown.items():
        assert 0.9 <= used <= 1.0, f"{node}: {used:.1%} of its budget spent ({a}, {p})"
    assert len(served) == 3, "nginx spread the calls over every replica"


def test_a_rate_limit_holds_within_one_request_across_replicas(
    balanced: tuple[str, AdminClient],
) -> None:
    url, admin = balanced
    key = admin.call("POST", "/admin/v1/keys", {"principal": "r"})["key"]
    found = asyncio.run(storm(url, [key, key], 300, "free", OUT))  # free: the org's budget is spent
    assert set(found) <= {"ok", "rate_limit_exceeded"}, found
    assert RPM - 1 <= found["ok"] <= RPM + 1, found


def test_a_run_limit_is_exact_across_replicas(balanced: tuple[str, AdminClient]) -> None:
    url, admin = balanced
    key = admin.call("POST", "/admin/v1/keys", {"principal": "agents"})["key"]

    run = {"x-governd-run": "run-across-replicas"}
    found = asyncio.run(storm(url, [key], 100, "free", OUT, run))
    assert found == {"ok": STEPS, "run_limit_exceeded": 100 - STEPS}, found
