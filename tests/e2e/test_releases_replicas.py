"""Two governd replicas on one PostgreSQL agree on every call's arm and on a release's step.

A principal's arm is a hash, the same on every replica; an agent run is pinned
to its first arm in the shared store; the counts that move a step are both
replicas' calls; and each transition is one ledger entry, however many
replicas judged it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import openai
import sqlalchemy as sa

from governd.cli.admin_client import AdminClient
from governd.ledger.signing import Signer
from governd.server.launcher import governd_server
from governd.testing.postgres import PostgresCluster
from tests.conftest import write_yaml

ADMIN = "adm-release-replicas"
CONFIG = """
principals: {org: acme, teams: {t: {}}}
upstreams:
  sim-a: {kind: sim, prefill_tps: 1000000, decode_tps: 100000}
  sim-b: {kind: sim, prefill_tps: 1000000, decode_tps: 100000}
models: {chat: {deployments: [{upstream: sim-a, model: a}]}}
router: {retries: 0, breaker_failures: 1000000}
ledger: {flush_ms: 5, signing_key: signing.pem}
releases:
  - name: shared
    model: chat
    canary: {deployment: sim-b/b}
    steps: [{set_weight: 50}, {pause: {min_events: 200}}, {set_weight: 70}, {pause: {duration: 1h}}]
    analysis: {latency: null, ttft: null}
"""


def ask(client: openai.OpenAI, run: str | None = None) -> str:
    headers = {"x-governd-run": run} if run else None
    reply = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=4,
        extra_headers=headers,
    )
    return reply.model


def test_replicas_agree_on_arms_and_steps(postgres: PostgresCluster, tmp_path: Path) -> None:
    url = postgres.new_database().replace("postgresql+psycopg://", "postgresql://")
    cfg = write_yaml(tmp_path / "governd.yaml", CONFIG)
    Signer.load(tmp_path / "signing.pem", create=True)
    for i in range(2):
        (tmp_path / f"r{i}").mkdir()
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                governd_server(tmp_path / f"r{i}", cfg, ADMIN, env={"GOVERND_STORAGE": url})
            )
            for i in range(2)
        ]
        admins = [AdminClient(s.url, ADMIN) for s in servers]
        keys = [
            admins[0].call("POST", "/admin/v1/keys", {"principal": "t"})["key"] for _ in range(16)
        ]
        per_replica = [
            [openai.OpenAI(base_url=s.url + "/v1", api_key=k, max_retries=0) for k in keys]
            for s in servers
        ]
        for clients in per_replica:  # a call rate to judge the first step's risk by
            for client in clients:
                ask(client)
        admins[1].call("POST", "/admin/v1/releases/shared/start")  # one replica starts it

        def step_on_both(done: Any) -> None:
            deadline = time.monotonic() + 60
            while not all(done(a.call("GET", "/admin/v1/releases/shared")) for a in admins):
                assert time.monotonic() < deadline, [
                    _brief(a.call("GET", "/admin/v1/releases/shared")) for a in admins
                ]
                for clients in per_replica:
                    for client in clients:
                        ask(client)

        step_on_both(lambda s: s["routed_weight"] == 50)
        arms = [[ask(c) for c in clients] for clients in per_replica]
        assert arms[0] == arms[1], "every key on the same arm on both replicas"
        assert set(arms[0]) == {"a", "b"}
        runs = {f"run-{i}": ask(per_replica[0][0], f"run-{i}") for i in range(12)}
        # The pause needed both replicas' canary calls.
        step_on_both(lambda s: s["routed_weight"] == 70)
        assert {run: ask(per_replica[1][0], run) for run in runs} == runs, "runs pinned for all"
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT operation, count(*) FROM ledger_entries_named "
                    "WHERE operation LIKE 'release_%' GROUP BY operation"
                )
            ).all()
            said = conn.execute(
                sa.text(
                    "SELECT reasons FROM ledger_entries_named WHERE operation = 'release_blocked'"
                )
            ).all()
        engine.dispose()
        assert dict(found) == {"release_started": 1, "release_step": 3}, said


def _brief(status: dict[str, Any]) -> dict[str, Any]:
    return {k: status[k] for k in ("phase", "step", "weight", "routed_weight", "note")}
