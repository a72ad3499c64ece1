"""How fast a failing canary is stopped: governd measured, Argo Rollouts and Flagger by their defaults.

A real ``governd serve`` over two sim deployments; a release puts half of 16
keys on the canary; the keys call at a steady rate. Then the canary's sim is
told to fail a share of its calls. Per trial the bench finds, from the
ledger, the append that made the canary's failure condition true (the first
canary entry after which its errors check, replayed on the epoch's entries,
fails) and the first call of a canary key served by stable after the abort,
and reports the time between them. Argo Rollouts and Flagger judge on a
schedule: a measurement each ``interval``, abort after ``failureLimit + 1``
(Argo) or ``threshold`` (Flagger) failed ones, so on the same series they
take (checks - 1) x interval plus the wait for the first check (uniform over
an interval), and never abort when the error ratio stays under their
success-rate threshold. Their figures use the documentation's own examples:
Argo ``interval: 5m``, ``failureLimit: 3``, ``successCondition: result[0] >=
0.95``; Flagger ``interval: 1m``, ``threshold: 5``, request success rate
``min: 99``. Prints a table and exits 0.

    python bench/releases.py [--trials 10] [--rate 40]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import openai

from governd.cli.admin_client import AdminClient
from governd.config.releases import Analysis
from governd.controllers.release_checks import judge
from governd.ledger.releases.counts import Tally
from governd.server.launcher import Served, governd_server

ADMIN = "adm-bench-releases"
CONFIG = """
principals: {org: acme, teams: {t: {}}}
upstreams:
  sim-a: {kind: sim, prefill_tps: 1000000, decode_tps: 100000, max_concurrency: 256}
  sim-b: {kind: sim, prefill_tps: 1000000, decode_tps: 100000, max_concurrency: 256}
models: {chat: {deployments: [{upstream: sim-a, model: a}]}}
router: {retries: 0, breaker_failures: 1000000}
ledger: {flush_ms: 5}
slos:
  - {name: avail, objective: 99.5, window: 30d, sli: availability, no_data: null}
"""
#: (name, interval s, failed checks that abort, the least success rate that passes)
PEERS = [("Argo Rollouts", 300.0, 4, 0.95), ("Flagger", 60.0, 5, 0.99)]
BUDGET, BURN = 0.005, 14.4  # the SLO's budget and its fastest page factor: what governd judges by


class Load:
    """Every key calls at ``rate`` calls per second in all, until stopped; each reply noted."""

    def __init__(self, clients: list[openai.OpenAI], rate: float) -> None:
        self._clients = clients
        self._gap = len(clients) / rate
        self._stop = threading.Event()
        self.replies: list[tuple[int, float, str]] = []  # (key, when, model or "failed")
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(len(clients))]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _run(self, i: int) -> None:
        client = self._clients[i]
        due = time.monotonic() + i * self._gap / len(self._clients)
        while not self._stop.is_set():
            time.sleep(max(0.0, due - time.monotonic()))
            due += self._gap
            try:
                model = client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=4
                ).model
            except openai.APIStatusError:
                model = "failed"
            with self._lock:
                self.replies.append((i, time.time(), model))


class LedgerTail:
    """The model-call entries appended since the last read (each trial reads only its own)."""

    def __init__(self, admin: AdminClient) -> None:
        self._admin = admin
        self._after: int | None = None

    def read(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        while True:
            page = self._admin.call("GET", "/admin/v1/ledger", limit=1000, after=self._after)
            entries += page["entries"]
            if page["next"] is None:
                return entries
            self._after = page["next"]


def trial(
    server: Served,
    clients: list[openai.OpenAI],
    name: str,
    error_rate: float,
    rate: float,
    tail: LedgerTail,
) -> float | None:
    """Seconds from the append that made the failure condition true to stable serving a canary key."""
    admin = AdminClient(server.url, ADMIN)
    tail.read()  # earlier trials' entries: not this one's
    spec = {
        "name": name,
        "model": "chat",
        "canary": {"deployment": "sim-b/b"},
        "steps": [{"set_weight": 50}, {"pause": {"duration": 3600}}],
        "analysis": {"slo": "avail", "latency": None, "ttft": None, "cost": None},
        "headroom": {"max_budget_per_step": 1.0, "min_error_budget": 0.0},
    }
    admin.call("POST", "/admin/v1/releases", spec)
    admin.call("POST", "/admin/v1/releases/" + name + "/start")
    with Load(clients, rate) as load:
        while admin.call("GET", f"/admin/v1/releases/{name}")["routed_weight"] != 50:
            time.sleep(0.1)
        time.sleep(2)
        canary_keys = {k for k, _, m in load.replies[-len(clients) :] if m == "b"}
        admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"error_rate": error_rate})
        deadline = time.monotonic() + 60
        while admin.call("GET", f"/admin/v1/releases/{name}")["phase"] != "aborted":
            if time.monotonic() > deadline:
                admin.call("POST", f"/admin/v1/releases/{name}/abort")
                admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {})
                return None
            time.sleep(0.05)
        time.sleep(1)
    admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {})
    history = admin.call("GET", f"/admin/v1/releases/{name}/history", limit=20)["history"]
    aborted_at = next(h["ts"] for h in history if h["operation"] == "release_aborted")
    condition_at = failure_condition(tail.read(), name)
    back = [t for k, t, m in load.replies if k in canary_keys and t > aborted_at and m == "a"]
    return (min(back) - condition_at) if back and condition_at else None


def failure_condition(entries: list[dict[str, Any]], name: str) -> float | None:
    """When a check of the canary first failed, replaying the epoch's entries of both arms in order."""
    arms = {"canary": Tally(), "stable": Tally()}
    analysis = Analysis(slo="avail", latency=None, ttft=None, cost=None)
    for e in entries:  # in the order they were appended
        if e["kind"] != "model_call":
            continue
        part = json.loads(e["signals"]).get("release") if e.get("signals") else None
        if not part or part["name"] != name or part["epoch"] != 0:
            continue
        arm = arms[part["arm"]]
        arm.events += 1
        arm.judged += 1
        arm.bad += 1 if e["status"] >= 500 else 0
        # Any entry may make it true (a stable one lets the comparison start): judge after each.
        failing = arms["canary"].bad > 0
        if failing and judge(analysis, BUDGET, BURN, arms["canary"], arms["stable"]).failed:
            return float(e["ts"])
    return None


def peer(interval: float, checks: int, passing: float, error_rate: float) -> tuple[float, float]:
    """Mean and p99 seconds to abort on a schedule of checks (inf: it never fails a check)."""
    if 1 - error_rate >= passing:
        return math.inf, math.inf
    return (checks - 1) * interval + interval / 2, (checks - 1 + 0.99) * interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rate", type=float, default=40.0, help="calls per second, all keys")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "governd.yaml"
        config.write_text(CONFIG)
        with governd_server(Path(tmp), config, ADMIN) as server:
            admin = AdminClient(server.url, ADMIN)
            keys = [
                admin.call("POST", "/admin/v1/keys", {"principal": "t"})["key"] for _ in range(16)
            ]
            clients = [
                openai.OpenAI(base_url=server.url + "/v1", api_key=k, max_retries=0) for k in keys
            ]
            tail = LedgerTail(admin)
            for error_rate in (1.0, 0.2, 0.05):
                took = []
                for i in range(args.trials):
                    name = f"b{int(error_rate * 100)}-{i}"
                    took.append(trial(server, clients, name, error_rate, args.rate, tail))
                    print(f"{name}: {took[-1]}", file=sys.stderr, flush=True)
                found = sorted(t for t in took if t is not None)
                rows.append((error_rate, found, len(took) - len(found)))
    print(
        f"canary: half of 16 keys, {args.rate:g} calls/s in all; SLO 99.5%, fails above {BURN}x its budget"
    )
    print(
        "| canary errors | governd p50 s | governd p99 s | missed | Argo Rollouts mean / p99 s | Flagger mean / p99 s |"
    )
    print("|--:|--:|--:|--:|--:|--:|")
    for error_rate, found, missed in rows:
        p50 = statistics.median(found) if found else math.nan
        p99 = found[min(len(found) - 1, math.ceil(0.99 * len(found)) - 1)] if found else math.nan
        peers = [
            peer(interval, checks, passing, error_rate) for _, interval, checks, passing in PEERS
        ]
        cells = [f"{m:,.0f} / {p:,.0f}" if math.isfinite(m) else "never" for m, p in peers]
        print(f"| {error_rate:.0%} | {p50:.2f} | {p99:.2f} | {missed} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
