"""governd serve on a PostgreSQL ledger: served, recorded, audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai

from governd.cli.admin_client import AdminClient
from governd.ledger.signing import Signer
from governd.server.launcher import governd_server
from governd.testing.postgres import PostgresCluster
from tests.conftest import write_yaml

CONFIG = """
principals: {org: acme, teams: {pg: {budgets: [{unit: usd, period: day, limit: 100}]}}}
ledger: {signing_key: signing.pem, checkpoint_every: 5, flush_ms: 5}
upstreams: {sim: {kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
models: {m: {deployments: [{upstream: sim, model: s}], pricing: {input: 1, output: 1}}}
"""


def test_serve_on_postgres_then_audit(postgres: PostgresCluster, tmp_path: Path) -> None:
    url = postgres.new_database().replace("postgresql+psycopg://", "postgresql://")
    cfg = write_yaml(tmp_path / "governd.yaml", CONFIG)
    Signer.load(tmp_path / "signing.pem", create=True)  # the key the config names
    with governd_server(tmp_path, cfg, "adm-pg", env={"GOVERND_STORAGE": url}) as served:
        admin = AdminClient(served.url, "adm-pg")
        key = admin.call("POST", "/admin/v1/keys", {"principal": "pg"})["key"]
        client = openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0)
        for _ in range(12):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "pg"}])  # type: ignore[arg-type]
        summary = admin.call("GET", "/admin/v1/ledger/summary", principal="pg")["principals"]
        assert summary[0]["requests"] == 12
        budgets = admin.call("GET", "/admin/v1/budgets", principal="pg")["budgets"]
        assert budgets[0]["spent"] > 0
    env = {**os.environ, "GOVERND_CONFIG": str(cfg), "GOVERND_STORAGE": url}
    out = subprocess.run(
        [sys.executable, "-m", "governd", "audit", "verify", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    # A checkpoint follows each batch that brings 5 or more unsigned entries, and one comes at shutdown.
    # 12 calls, and the entry recording the checkpoint key on first start.
    assert report["intact"] and report["entries"] == 13 and report["checkpoints"] >= 2
