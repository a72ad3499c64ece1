"""Strict durability: after kill -9 mid-load, every response a client saw complete has its entry."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import openai
import sqlalchemy as sa

from governd.admin_client import AdminClient
from governd.config import load_config
from governd.launcher import Served, governd_server
from governd.ledger.audit import open_ledger, trusted_keys, verify_ledger
from tests.conftest import write_yaml

ADMIN = "adm-crash"
CONFIG = """
principals: {org: acme, teams: {crash: {}}}
ledger: {durability: strict, flush_ms: 50, checkpoint_every: 50}
upstreams: {sim: {kind: sim, prefill_tps: 200000, decode_tps: 3000, max_concurrency: 64, output_tokens: [10, 30]}}
models: {m: {deployments: [{upstream: sim, model: s}], pricing: {input: 1, output: 1}}}
"""
MSG = [{"role": "user", "content": "crash test"}]


def drive(
    served: Served, key: str, completed: list[str], stop: threading.Event, stream: bool
) -> None:
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0, timeout=10)
    while not stop.is_set():
        try:
            if stream:
                with client.chat.completions.with_streaming_response.create(
                    model="m",
                    messages=MSG,
                    stream=True,  # type: ignore[arg-type]
                ) as resp:
                    rid = resp.headers["x-governd-request-id"]
                    for _ in resp.parse():
                        pass
            else:
                raw = client.chat.completions.with_raw_response.create(model="m", messages=MSG)  # type: ignore[arg-type]
                rid = raw.headers["x-governd-request-id"]
                raw.parse()
        except (openai.APIError, OSError):
            continue  # the server is gone; this response never completed
        completed.append(rid)


def test_kill_9_loses_no_entry_a_client_saw_complete(tmp_path: Path) -> None:
    cfg_path = write_yaml(tmp_path / "governd.yaml", CONFIG)
    completed: list[str] = []
    stop = threading.Event()
    with governd_server(tmp_path, cfg_path, ADMIN) as served:
        key = AdminClient(served.url, ADMIN).call("POST", "/admin/v1/keys", {"principal": "crash"})[
            "key"
        ]
        workers = [
            threading.Thread(target=drive, args=(served, key, completed, stop, i % 2 == 0))
            for i in range(8)
        ]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 60
        while len(completed) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(served.process.pid, signal.SIGKILL)
        served.process.wait()
        stop.set()
        for w in workers:
            w.join(30)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url).connect() as conn:
        recorded = {row[0] for row in conn.execute(sa.text("SELECT id FROM ledger_entries"))}
    seen = list(completed)
    assert len(seen) >= 300
    assert [rid for rid in seen if rid not in recorded] == []
    keys = trusted_keys(load_config(cfg_path).model_copy(update={"storage": url}))
    report = verify_ledger(open_ledger(url), keys)
    assert report.intact, report.problems
    assert report.checkpoints >= 1

    # A restarted server extends the same chain.
    with governd_server(tmp_path, cfg_path, ADMIN) as again:
        client = openai.OpenAI(base_url=again.url + "/v1", api_key=key, max_retries=0)
        client.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
    after = verify_ledger(open_ledger(url), keys)
    assert after.intact and after.entries > report.entries
