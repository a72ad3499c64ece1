"""Scale-out: N replicas on one PostgreSQL and one Redis behind nginx, under concurrent calls.

Starts PostgreSQL (a throwaway cluster), redis-server, ``--replicas`` x
``governd serve`` and nginx round-robin in front, all on loopback. Then
``--calls`` chat calls at once (streamed and not, with and without
``max_tokens``) from two branches of the tree, a burst against a per-minute
rate limit, and a burst of steps of one agent run. Prints, per budget, the
share spent (never over 1.0; at least 0.9 usable), the calls admitted against
what the budgets afford, the rate limit's and the run limit's admissions
against their limits, and the calls a second through nginx.

    python bench/scale_out.py [--replicas 3] [--calls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from governd import tokens
from governd.cli.admin_client import AdminClient
from governd.ledger.signing import Signer
from governd.server.launcher import governd_server
from governd.testing.nginx import nginx_balancer
from governd.testing.postgres import postgres_cluster
from governd.testing.redis import redis_server
from governd.testing.traffic import MESSAGES, storm

ADMIN = "adm-bench-scale"
OUT = 20
COST = (tokens.count_messages(MESSAGES) * 3.0 + OUT * 15.0) / 1e6
RPM, STEPS = 40, 25


def config(afford_a: int, afford_p: int) -> str:
    """Budgets affording ``afford_a`` calls to team a and ``afford_p`` to project b/p."""
    a, p = COST * (afford_a + 0.5), COST * (afford_p + 0.5)
    return f"""
principals:
  org: scale
  budgets: [{{unit: usd, period: day, limit: {a + p!r}}}]
  teams:
    a: {{budgets: [{{unit: usd, period: day, limit: {a!r}}}]}}
    b:
      budgets: [{{unit: usd, period: day, limit: {p!r}}}]
      projects: {{p: {{budgets: [{{unit: usd, period: day, limit: {p!r}}}]}}}}
    r: {{limits: {{rpm: {RPM}}}}}
    agents: {{run_limits: {{steps: {STEPS}}}}}
upstreams:
  sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000, max_concurrency: 1024,
         prefix_cache_tokens: 0, output_tokens: [{OUT}, {OUT}]}}
ledger: {{flush_ms: 5, signing_key: signing.pem}}
models:
  m: {{deployments: [{{upstream: sim, model: sim}}], pricing: {{input: 3.0, output: 15.0}}}}
  free: {{deployments: [{{upstream: sim, model: sim}}]}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000, help="calls at once, half per branch")
    args = parser.parse_args()
    half = args.calls // 2
    afford_a, afford_p = int(half * 0.24), int(half * 0.16)
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        tmp = Path(folder)
        cfg = tmp / "governd.yaml"
        cfg.write_text(config(afford_a, afford_p))
        Signer.load(tmp / "signing.pem", create=True)
        database = stack.enter_context(postgres_cluster()).new_database()
        (tmp / "redis").mkdir()
        redis = stack.enter_context(redis_server(tmp / "redis"))
        env = {"GOVERND_STORAGE": database, "GOVERND_STATE": redis}
        backends = []
        for i in range(args.replicas):
            home = tmp / f"r{i}"
            home.mkdir()
            (home / "signing.pem").write_bytes((tmp / "signing.pem").read_bytes())
            served = stack.enter_context(governd_server(home, cfg, ADMIN, env=env))
            backends.append(served.url.removeprefix("http://"))
        url = stack.enter_context(nginx_balancer(tmp / "nginx", backends))
        admin = AdminClient(url, ADMIN)
        key = {
            p: admin.call("POST", "/admin/v1/keys", {"principal": p})["key"]
            for p in ("a", "b/p", "r", "agents")
        }

        async def budgets_burst() -> tuple[dict[str, int], float]:
            start = time.perf_counter()
            a, p = await asyncio.gather(
                storm(url, [key["a"]] * 2, half, max_tokens=OUT),
                storm(url, [key["b/p"]] * 2, half, max_tokens=OUT),
            )
            return {"a": a["ok"], "b/p": p["ok"]}, time.perf_counter() - start

        admitted, took = asyncio.run(budgets_burst())
        rated = asyncio.run(storm(url, [key["r"]] * 2, 300, "free", OUT))
        run = {"x-governd-run": "bench-run"}
        stepped = asyncio.run(storm(url, [key["agents"]], 100, "free", OUT, run))
        shown = admin.call("GET", "/admin/v1/budgets")["budgets"]

    print(
        f"{args.replicas} replicas behind nginx, one PostgreSQL, one Redis; {args.calls} calls at once"
    )
    print(f"\n{'budget':<12} {'spent/limit':>12}")
    for b in shown:
        print(f"{b['principal']:<12} {b['spent'] / b['limit']:>12.3f}")
    print(f"\n{'what':<22} {'admitted':>9} {'affordable':>11}")
    print(f"{'team a calls':<22} {admitted['a']:>9} {afford_a:>11}")
    print(f"{'project b/p calls':<22} {admitted['b/p']:>9} {afford_p:>11}")
    print(f"{'rpm ' + str(RPM) + ', 300 calls':<22} {rated['ok']:>9} {RPM:>11}")
    print(f"{'run of ' + str(STEPS) + ' steps, 100':<22} {stepped['ok']:>9} {STEPS:>11}")
    print(
        f"\n{args.calls} calls answered in {took:.2f} s: {args.calls / took:.0f} calls/s through nginx"
    )


if __name__ == "__main__":
    main()
