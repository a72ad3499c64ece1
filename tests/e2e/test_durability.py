"""Strict durability: after kill -9 mid-load, every response a client saw complete has its entry."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import openai
import sqlalchemy as sa

from governd.cli.admin_client import AdminClient, AdminError
from governd.config import load_config
from governd.ledger.audit import open_ledger, trusted_keys, verify_ledger
from governd.server.launcher import Served, governd_server
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


def kill_9_under_load(
    served: Served,
    workers: list[threading.Thread],
    stop: threading.Event,
    enough: Callable[[], bool],
) -> None:
    """Start the workers, kill -9 the server once ``enough()`` (or after 60 s), stop them."""
    for w in workers:
        w.start()
    deadline = time.monotonic() + 60
    while not enough() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(served.process.pid, signal.SIGKILL)
    served.process.wait()
    stop.set()
    for w in workers:
        w.join(30)


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
        kill_9_under_load(served, workers, stop, lambda: len(completed) >= 300)
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


JOBS_CONFIG = """
principals: {org: acme, teams: {crash: {}, broke: {budgets: [{unit: usd, period: day, limit: 0}]}}}
ledger: {durability: strict, flush_ms: 50, checkpoint_every: 50}
compute:
  flavors: {h100: {price_per_hour: 1}}
  nodes: {box: {devices: [{flavor: h100, count: 8}]}}
  queues: {q: {quotas: {h100: {nominal: 8}}}}
  default_max_runtime_s: 60
"""


def submit_jobs(served: Served, principal: str, outcomes: list[int], stop: threading.Event) -> None:
    """Submit one-GPU jobs that exit at once, until told to stop; note each answer's status."""
    admin = AdminClient(served.url, ADMIN)
    body = {"queue": "q", "gpus": 1, "command": ["true"], "principal": principal}
    while not stop.is_set():
        try:
            admin.call("POST", "/admin/v1/jobs", body)
            outcomes.append(201)
        except AdminError as exc:
            outcomes.append(exc.status)
        except OSError:
            return  # the server is gone


def watch_ended(served: Served, ended: set[str], stop: threading.Event) -> None:
    """Note every job a client could see succeeded."""
    admin = AdminClient(served.url, ADMIN)
    while not stop.is_set():
        try:
            jobs = admin.call("GET", "/admin/v1/jobs", status="succeeded", limit=1000)["jobs"]
        except (AdminError, OSError):
            return
        ended.update(j["id"] for j in jobs)


def test_kill_9_loses_no_entry_of_a_job_a_client_saw_end(tmp_path: Path) -> None:
    """A job shown as ended, or a submission shown as refused, has its entry after kill -9."""
    cfg_path = write_yaml(tmp_path / "governd.yaml", JOBS_CONFIG)
    ended: set[str] = set()
    refusals: list[int] = []
    accepted: list[int] = []
    stop = threading.Event()
    with governd_server(tmp_path, cfg_path, ADMIN) as served:
        workers = [
            threading.Thread(target=submit_jobs, args=(served, "crash", accepted, stop)),
            threading.Thread(target=submit_jobs, args=(served, "crash", accepted, stop)),
            threading.Thread(target=submit_jobs, args=(served, "broke", refusals, stop)),
            threading.Thread(target=watch_ended, args=(served, ended, stop)),
        ]
        kill_9_under_load(served, workers, stop, lambda: len(ended) >= 100)
    seen = set(ended)
    refused_seen = refusals.count(429)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url).connect() as conn:
        recorded = dict(
            conn.execute(sa.text("SELECT id, status FROM ledger_entries WHERE kind = 'job'")).all()
        )
    assert len(seen) >= 100 and refused_seen > 0
    assert sorted(seen - set(recorded)) == []
    assert sum(1 for status in recorded.values() if status == 429) >= refused_seen

    # After a restart, no job with an entry runs again or stays unfinished, and all jobs end.
    with governd_server(tmp_path, cfg_path, ADMIN) as again:
        admin = AdminClient(again.url, ADMIN)
        deadline = time.monotonic() + 60
        while admin.call("GET", "/admin/v1/jobs", status="active", limit=1000)["jobs"]:
            assert time.monotonic() < deadline, "jobs left unfinished after the restart"
            time.sleep(0.05)
    keys = trusted_keys(load_config(cfg_path).model_copy(update={"storage": url}))
    report = verify_ledger(open_ledger(url), keys)
    assert report.intact, report.problems
    with open_ledger(url).connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, status FROM jobs")).all())
        ran = conn.execute(
            sa.text("SELECT count(*) FROM ledger_entries WHERE kind = 'job' AND status != 429")
        ).scalar()
    assert ran == len(rows), "every job that was queued has exactly one entry"
    assert {rows[job_id] for job_id in seen} == {"succeeded"}
