"""One job scheduler across three replicas; its leader killed mid-run, another takes over.

Three ``governd serve`` replicas on one PostgreSQL and one Redis share one
queue of four (pretend) GPUs. Jobs go to every replica; only the holder of
the scheduler's lease runs them. Each job takes an exclusive ``flock`` on a
file of its own and one of its device: a second attempt of a job running
while the first still does, or two jobs on one device, cannot get its lock
and says so. The leader is killed with ``kill -9`` while jobs run: another
replica takes the lease within seconds, kills the attempts left running,
and runs every job to its one ledger entry; no budget hold is left behind.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from governd.cli.admin_client import AdminClient
from governd.ledger.signing import Signer
from governd.pipeline.jobs.leadership import LEASE_S, TICK_S
from governd.server.launcher import Served, governd_server
from governd.testing.postgres import PostgresCluster
from tests.conftest import write_yaml

ADMIN = "adm-leader"
JOBS = 8
RUN_S = 8  # longer than a takeover: the dead leader's attempts still run when it happens
CONFIG = """
principals:
  org: acme
  teams: {train: {budgets: [{unit: usd, period: day, limit: 100}]}}
ledger: {durability: strict, flush_ms: 5, signing_key: signing.pem}
compute:
  flavors: {h100: {price_per_hour: 1}}
  nodes: {box: {devices: [{flavor: h100, count: 4}]}}
  queues: {q: {quotas: {h100: {nominal: 4}}}}
  default_max_runtime_s: 60
  grace_s: 1
  log_dir: LOGS
"""
# Fails (exit 3 or 4, noted in faults) unless it is the only attempt of its job and the only
# job on its device right now.
SCRIPT = f"""
exec 8>"$DIR/job-$GOVERND_JOB_ID.lock"
flock -n 8 || {{ echo "twice $GOVERND_JOB_ID" >> "$DIR/faults"; exit 3; }}
exec 9>"$DIR/device-$CUDA_VISIBLE_DEVICES.lock"
flock -n 9 || {{ echo "shared $CUDA_VISIBLE_DEVICES" >> "$DIR/faults"; exit 4; }}
echo "$GOVERND_JOB_ID" >> "$DIR/starts"
sleep {RUN_S}
"""


@pytest.fixture
def replicas(
    tmp_path: Path, postgres: PostgresCluster, redis_url: str
) -> Iterator[tuple[list[Served], str]]:
    """Three replicas on one database and one Redis, and that database's URL."""
    cfg = write_yaml(tmp_path / "governd.yaml", CONFIG.replace("LOGS", str(tmp_path / "logs")))
    Signer.load(tmp_path / "signing.pem", create=True)
    database = postgres.new_database()
    env = {"GOVERND_STORAGE": database, "GOVERND_STATE": redis_url}
    with contextlib.ExitStack() as stack:
        served = []
        for i in range(3):
            home = tmp_path / f"r{i}"
            home.mkdir()
            (home / "signing.pem").write_bytes((tmp_path / "signing.pem").read_bytes())
            served.append(stack.enter_context(governd_server(home, cfg, ADMIN, env=env)))
        yield served, database


def leader(served: list[Served]) -> list[Served]:
    """The replicas that say they schedule now."""
    return [
        s
        for s in served
        if AdminClient(s.url, ADMIN).call("GET", "/admin/v1/compute")["scheduler"]["here"]
    ]


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Poll ``check`` until it is true; the seconds it took (fails past ``timeout``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_killed_scheduler_is_replaced_within_seconds_and_no_job_runs_twice_or_is_lost(
    replicas: tuple[list[Served], str], tmp_path: Path
) -> None:
    served, database = replicas
    assert len(leader(served)) == 1, "exactly one replica schedules"
    first = leader(served)[0]
    body = {
        "queue": "q",
        "gpus": 1,
        "command": ["/bin/sh", "-c", SCRIPT],
        "env": {"DIR": str(tmp_path)},
        "principal": "train",
    }
    submitted = [
        AdminClient(served[i % 3].url, ADMIN).call("POST", "/admin/v1/jobs", body)["id"]
        for i in range(JOBS)
    ]
    starts = tmp_path / "starts"
    wait_for(
        "four jobs running", lambda: starts.exists() and len(starts.read_text().split()) >= 4, 30
    )

    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    rest = [s for s in served if s is not first]
    took = wait_for(
        "another replica schedules", lambda: len(leader(rest)) == 1, LEASE_S + 5 * TICK_S
    )

    admin = AdminClient(rest[0].url, ADMIN)
    wait_for(
        "every job ended",
        lambda: not admin.call("GET", "/admin/v1/jobs", status="active", limit=100)["jobs"],
        120,
    )
    faults = (tmp_path / "faults").read_text() if (tmp_path / "faults").exists() else ""
    assert faults == "", (
        f"an attempt ran beside another of its job, or on a taken device:\n{faults}"
    )
    jobs = {j["id"]: j for j in admin.call("GET", "/admin/v1/jobs", limit=100)["jobs"]}
    assert {jobs[i]["status"] for i in submitted} == {"succeeded"}
    requeued = [i for i in submitted if any(e["event"] == "requeued" for e in jobs[i]["events"])]
    assert requeued, "the jobs the dead leader ran were run again by its successor"
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        entries = conn.execute(
            sa.text("SELECT id, count(*) FROM ledger_entries WHERE kind = 'job' GROUP BY id")
        ).all()
    engine.dispose()
    assert dict(entries) == dict.fromkeys(submitted, 1), "each job has exactly one entry"
    (budget,) = [
        b
        for b in admin.call("GET", "/admin/v1/budgets")["budgets"]
        if b["principal"] == "acme/train"
    ]
    assert budget["reserved"] == pytest.approx(0.0, abs=1e-9), "no job's hold was left behind"
    assert budget["spent"] > 0
    # A replica that does not schedule queues a job and passes on a cancel to the one that does.
    (now_leading,) = leader(rest)
    (follower,) = [s for s in rest if s is not now_leading]
    on_follower = AdminClient(follower.url, ADMIN)
    long = {**body, "command": ["sleep", "600"]}
    job_id = on_follower.call("POST", "/admin/v1/jobs", long)["id"]

    def shown(status: str) -> Callable[[], bool]:
        return lambda: bool(on_follower.call("GET", f"/admin/v1/jobs/{job_id}")["status"] == status)

    wait_for("the follower's job runs", shown("running"), 10)
    on_follower.call("POST", f"/admin/v1/jobs/{job_id}/cancel")
    wait_for("the follower's cancel ends it", shown("cancelled"), 10)
    print(f"takeover after kill -9: {took:.1f} s; {len(requeued)} jobs run again")
