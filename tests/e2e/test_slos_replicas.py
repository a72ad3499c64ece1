"""Two governd replicas on one PostgreSQL ledger judge an SLO over both their calls, and page once.

Each replica serves half the calls; only together do they burn: the SLO pages
on counts shared through the store, each replica shows the same windows, and
the ledger holds one ``slo_fired`` entry however many replicas judged it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import openai

from governd.cli.admin_client import AdminClient
from governd.ledger.signing import Signer
from governd.server.launcher import governd_server
from governd.testing.postgres import PostgresCluster
from tests.conftest import write_yaml

ADMIN = "adm-replicas"
CONFIG = """
principals: {org: acme, teams: {ops: {}}}
upstreams: {sim: {kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
models: {chat: {deployments: [{upstream: sim, model: s}]}}
router: {retries: 0, breaker_failures: 1000000}
ledger: {flush_ms: 5, signing_key: signing.pem}
slos:
  - name: avail
    objective: 99
    window: 1h
    sli: availability
    alerts: [{severity: page, long: 1m, short: 10s, budget_percent: 2}]
    no_data: null
"""


def status(admin: AdminClient) -> dict[str, Any]:
    (slo,) = admin.call("GET", "/admin/v1/slos")["slos"]
    return dict(slo["groups"][0]) if slo["groups"] else {"firing": [], "windows": []}


def test_replicas_share_counts_and_record_the_page_once(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database().replace("postgresql+psycopg://", "postgresql://")
    cfg = write_yaml(tmp_path / "governd.yaml", CONFIG)
    Signer.load(tmp_path / "signing.pem", create=True)  # one key for both replicas
    env = {"GOVERND_STORAGE": url}
    for i in range(2):
        (tmp_path / f"r{i}").mkdir()
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(governd_server(tmp_path / f"r{i}", cfg, ADMIN, env=env))
            for i in range(2)
        ]
        admins = [AdminClient(s.url, ADMIN) for s in servers]
        key = admins[0].call("POST", "/admin/v1/keys", {"principal": "ops"})["key"]
        clients = [
            openai.OpenAI(base_url=s.url + "/v1", api_key=key, max_retries=0) for s in servers
        ]
        # Replica 1's sim fails; replica 0's does not: 50% bad over both, a burn of 50.
        admins[1].call("PUT", "/admin/v1/upstreams/sim/faults", {"error_rate": 1.0})
        deadline = time.monotonic() + 30
        while not all(status(a)["firing"] == ["page"] for a in admins):
            assert time.monotonic() < deadline, [status(a) for a in admins]
            for client in clients:
                try:
                    client.chat.completions.create(
                        model="chat", messages=[{"role": "user", "content": "x"}]
                    )
                except openai.APIStatusError as exc:
                    assert exc.status_code == 502

        def hour(a: AdminClient) -> dict[str, Any]:
            return next(w for w in status(a)["windows"] if w["window_s"] == 3600)

        # Within a tick each replica counts the other's calls too (replica 1 may page on its
        # own failures first: it reads replica 0's good calls at its next tick).
        while not all(hour(a)["good"] > 0 and hour(a)["bad"] > 0 for a in admins):
            assert time.monotonic() < deadline, [hour(a) for a in admins]
            time.sleep(0.05)

        def fired() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = admins[0].call("GET", "/admin/v1/slos/avail")[
                "transitions"
            ]
            return found

        while not fired():
            assert time.monotonic() < deadline
            time.sleep(0.05)

        # A later tick on each replica (one that counts a new call: the ticks of the first
        # judgement, and their claims, are over) has judged it firing too: still one entry.
        def total(a: AdminClient) -> int:
            w = hour(a)
            return int(w["good"] + w["bad"])

        seen = [total(a) for a in admins]
        clients[0].chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "y"}]
        )
        while not all(total(a) > before for a, before in zip(admins, seen, strict=True)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert [t["state"] for t in fired()] == ["fired"]
        assert [
            t["state"] for t in admins[1].call("GET", "/admin/v1/slos/avail")["transitions"]
        ] == ["fired"]
