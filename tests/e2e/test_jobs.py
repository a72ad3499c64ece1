"""GPU jobs end to end on a declared 8-GPU node, with the local executor (real processes).

Jobs see exactly their devices; a critical job preempts a batch one, which is
requeued and finishes later; a job is stopped at its budget's end; a budget
refuses what it cannot hold; bad submissions are refused with the field named;
every job has a ledger entry with wait, device-seconds, cost and preemptions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest

from governd.cli.admin_client import AdminClient, AdminError
from governd.server.launcher import Served, free_port, governd_server
from governd.testing.ray_head import RAY_LOOPBACK, ray_head
from tests.conftest import alive, governd_cli, write_yaml

ADMIN = "adm-jobs"
CONFIG = """
principals:
  org: acme
  teams:
    research:
      budgets: [{unit: usd, period: day, limit: 10000}]
    interns:
      budgets: [{unit: usd, period: day, limit: 0.5}]
    students:
      budgets: [{unit: device_hours, period: day, limit: 0.01}]   # 36 device-seconds
compute:
  flavors: {h100: {price_per_hour: 3600}}      # 1 USD per device-second: costs are easy to check
  nodes:
    box: {devices: [{flavor: h100, count: 8, nvlink: 4}]}
  queues:
    research: {principals: [research], quotas: {h100: {nominal: 8}}}
    interns: {principals: [interns], quotas: {h100: {nominal: 2}}}
    students: {principals: [students], quotas: {h100: {nominal: 2}}}
  default_max_runtime_s: 5
  executor: EXECUTOR
  grace_s: 5
  pass_env: [JOBS_SHARED_CACHE]
ledger: {flush_ms: 5}
policies:
  - {id: critical-is-small, when: 'job.priority == "critical" && job.gpus > 4', effect: deny,
     message: critical jobs take at most 4 GPUs}
  - {id: long-jobs-need-a-human, when: 'job.max_runtime_s > 1000', effect: require_approval}
governance: {approval_timeout_s: 60}
"""
# Prints what it sees; with a marker path, a first attempt creates it and waits to be stopped,
# a later attempt (after a requeue) finds it and exits at once (printing "second attempt").
SCRIPT = """
import os, sys, time
if len(sys.argv) > 1:
    if os.path.exists(sys.argv[1]):
        print("second attempt", flush=True)
        sys.exit(0)
    open(sys.argv[1], "w").close()  # before the line tests wait for: a stop after it finds it
print("devices", os.environ["CUDA_VISIBLE_DEVICES"], "units", os.environ["GOVERND_UNITS"], flush=True)
if len(sys.argv) > 1:
    time.sleep(120)
"""


Env = tuple[Served, dict[str, str], str]

#: governd's environment in these tests: its secrets, and one variable the config passes on.
SECRETS = {"UPSTREAM_TOKEN": "sk-upstream-never-in-a-job", "JOBS_SHARED_CACHE": "/shared/cache"}
#: Prints the job's whole environment as JSON.
PRINT_ENV = [sys.executable, "-c", "import json, os; print('env', json.dumps(dict(os.environ)))"]
#: What a job may see: inherited by name (``LC_*`` too), passed by config, set by governd.
JOB_ENV = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR"} | {
    "JOBS_SHARED_CACHE",
    "CUDA_VISIBLE_DEVICES",
    "GOVERND_JOB_ID",
    "GOVERND_UNITS",
    "MINE",
}


@pytest.fixture(scope="module", params=["local", "ray"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    """governd with the local executor, then with a real Ray cluster (started once per session)."""
    executor = "local" if request.param == "local" else request.getfixturevalue("ray_address")
    tmp: Path = tmp_path_factory.mktemp("jobs")
    config = write_yaml(tmp / "governd.yaml", CONFIG.replace("EXECUTOR", executor))
    with governd_server(tmp, config, ADMIN, env=SECRETS) as served:
        admin = AdminClient(served.url, ADMIN)
        keys = {
            team: admin.call("POST", "/admin/v1/keys", {"principal": team})["key"]
            for team in ("research", "interns", "students")
        }
        yield served, keys, request.param


def submit(served: Served, key: str, **body: Any) -> httpx2.Response:
    return httpx2.post(
        served.url + "/v1/jobs", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


def script(*args: str) -> list[str]:
    return [sys.executable, "-c", SCRIPT, *args]


def wait_for(served: Served, job_id: str, *statuses: str, seen: str = "") -> dict[str, Any]:
    """Poll the job until it has one of ``statuses`` (and its log contains ``seen``)."""
    admin = AdminClient(served.url, ADMIN)
    deadline = time.monotonic() + 60
    while True:
        job = admin.call("GET", f"/admin/v1/jobs/{job_id}")
        log = admin.call("GET", f"/admin/v1/jobs/{job_id}/logs")["log"]
        if job["status"] in statuses and seen in log:
            return dict(job)
        assert time.monotonic() < deadline, f"{job_id} stayed {job['status']}: {job['reason']}"
        time.sleep(0.05)


def entry(served: Served, job_id: str) -> dict[str, Any]:
    return dict(AdminClient(served.url, ADMIN).call("GET", f"/admin/v1/ledger/{job_id}"))


def test_a_job_sees_exactly_its_devices_and_is_recorded(
    server: Env,
) -> None:
    served, keys, executor = server
    created = submit(served, keys["research"], queue="research", gpus=4, command=script())
    assert created.status_code == 201, created.text
    job = wait_for(served, created.json()["id"], "succeeded")
    log = AdminClient(served.url, ADMIN).call("GET", f"/admin/v1/jobs/{job['id']}/logs")["log"]
    devices = log.split("devices ")[1].split()[0].split(",")
    assert len(set(devices)) == 4 and set(devices) <= {str(i) for i in range(8)}
    assert len(job["units"]) == 4
    if executor == "local":  # on Ray, Ray picks the ids on the node; governd's units are accounting
        assert devices in (["0", "1", "2", "3"], ["4", "5", "6", "7"]), "one NVLink domain"
        assert job["units"] == [f"box:{d}" for d in devices]
    recorded = entry(served, job["id"])
    assert recorded["kind"] == "job" and recorded["decision"] == "allow"
    assert recorded["status"] == 200 and recorded["served_model"] == "h100"
    signals = json.loads(recorded["signals"])
    assert signals["device_seconds"] == pytest.approx(4 * signals["runtime_s"], abs=5e-3)
    assert recorded["cost_usd"] == pytest.approx(signals["device_seconds"], abs=2e-3)
    assert 0 < recorded["cost_usd"] < 4 * 5
    metrics = httpx2.get(
        served.url + "/metrics", headers={"authorization": f"Bearer {ADMIN}"}, timeout=30
    ).text
    used = [
        line
        for line in metrics.splitlines()
        if line.startswith("governd_job_device_seconds_total{") and 'queue="research"' in line
    ]
    assert used and float(used[0].rsplit(" ", 1)[1]) >= signals["device_seconds"]
    assert 'governd_devices_in_use{flavor="h100"}' in metrics
    assert "governd_job_queue_wait_seconds_bucket" in metrics


def job_environment(served: Served, job_id: str) -> dict[str, str]:
    """What a ``PRINT_ENV`` job saw, once it succeeded."""
    wait_for(served, job_id, "succeeded", seen="env ")
    log = AdminClient(served.url, ADMIN).call("GET", f"/admin/v1/jobs/{job_id}/logs")["log"]
    seen: dict[str, str] = json.loads(log.split("env ", 1)[1].splitlines()[0])
    return seen


def assert_only_its_own(seen: dict[str, str], job_id: str) -> None:
    """A job's environment holds nothing of governd's beyond what it may inherit."""
    assert {k for k in seen if not k.startswith("LC_")} <= JOB_ENV, sorted(seen)
    for secret in (ADMIN, *SECRETS.values()):
        assert all(secret not in v for k, v in seen.items() if k != "JOBS_SHARED_CACHE"), secret
    assert seen["MINE"] == "yes" and seen["GOVERND_JOB_ID"] == job_id and "PATH" in seen


def test_a_job_sees_nothing_of_governds_environment(server: Env) -> None:
    """A team key that may submit a job cannot read governd's admin key or credentials."""
    served, keys, executor = server
    created = submit(
        served,
        keys["research"],
        queue="research",
        gpus=1,
        command=PRINT_ENV,
        env={"MINE": "yes", "GOVERND_JOB_ID": "spoofed"},
    )
    assert created.status_code == 201, created.text
    seen = job_environment(served, created.json()["id"])
    assert_only_its_own(seen, created.json()["id"])
    if executor == "local":  # a Ray cluster's workers have the environment it was started with
        assert seen["JOBS_SHARED_CACHE"] == SECRETS["JOBS_SHARED_CACHE"]


def test_jobs_running_together_see_disjoint_devices(server: Env, tmp_path: Path) -> None:
    served, keys, _ = server
    ids = [
        submit(
            served,
            keys["research"],
            queue="research",
            gpus=4,
            max_runtime_s=60,
            command=script(str(tmp_path / f"m{i}")),
        ).json()["id"]
        for i in range(2)
    ]
    admin = AdminClient(served.url, ADMIN)
    seen = []
    for job_id in ids:
        wait_for(served, job_id, "running", seen="devices")
        log = admin.call("GET", f"/admin/v1/jobs/{job_id}/logs")["log"]
        seen.append(set(log.split("devices ")[1].split()[0].split(",")))
    compute = admin.call("GET", "/admin/v1/compute")
    research = next(q for q in compute["queues"] if q["queue"] == "research")
    assert research["used"] == 8 and research["available"] == 0
    assert sorted(u["job"] for u in compute["units"] if u["job"]) == sorted(ids * 4)
    queues = governd_cli(served.url, ADMIN, "jobs", "queues")
    assert queues.returncode == 0 and "research" in queues.stdout
    assert (
        compute["scheduler"]["here"]
        and f"({compute['scheduler']['replica']}) schedules" in queues.stdout
    )
    devices = governd_cli(served.url, ADMIN, "jobs", "devices")
    assert all(job_id in devices.stdout for job_id in ids)
    for job_id in ids:
        admin.call("POST", f"/admin/v1/jobs/{job_id}/cancel")
        wait_for(served, job_id, "cancelled")
    assert len(seen[0]) == len(seen[1]) == 4 and not seen[0] & seen[1]


def test_a_critical_job_preempts_a_batch_one_which_finishes_later(
    server: Env, tmp_path: Path
) -> None:
    served, keys, _ = server
    marker = str(tmp_path / "batch-started")
    batch = submit(
        served,
        keys["research"],
        queue="research",
        gpus=8,
        priority="batch",
        max_runtime_s=300,
        command=script(marker),
    ).json()
    wait_for(served, batch["id"], "running", seen="devices")
    critical = submit(
        served, keys["research"], queue="research", gpus=4, priority="critical", command=script()
    ).json()
    done = wait_for(served, critical["id"], "succeeded")
    later = wait_for(served, batch["id"], "succeeded", seen="second attempt")
    assert later["preemptions"] == 1
    kinds = [e["event"] for e in later["events"]]
    assert kinds == ["started", "preempted", "started", "succeeded"]
    assert later["events"][1]["detail"] == f"within_queue by {critical['id']}"
    assert later["events"][2]["at"] >= done["events"][-1]["at"], "8 devices free only after it"
    signals = json.loads(entry(served, batch["id"])["signals"])
    assert signals["preemptions"] == 1 and signals["queue_wait_s"] > 0


def test_a_job_is_stopped_at_its_budgets_end(server: Env) -> None:
    served, keys, _ = server
    created = submit(
        served,
        keys["research"],
        queue="research",
        gpus=1,
        max_runtime_s=1,
        command=[sys.executable, "-c", "import time; print('working', flush=True); time.sleep(60)"],
    ).json()
    assert created["reserved_usd"] == pytest.approx(1.0)
    job = wait_for(served, created["id"], "failed")
    assert "reached its max runtime of 1 s (its budget's end)" in job["reason"]
    recorded = entry(served, job["id"])
    assert recorded["error_code"] == "job_failed" and "budget's end" in recorded["reasons"]
    assert 1.0 <= recorded["cost_usd"] < 1.0 + 5, "the grace period at most"


def test_a_budget_refuses_what_it_cannot_hold(server: Env) -> None:
    served, keys, _ = server
    refused = submit(served, keys["interns"], queue="interns", gpus=1, command=script())
    assert refused.status_code == 429
    err = refused.json()["error"]
    assert err["code"] == "budget_exceeded" and "acme/interns usd/day" in err["message"]
    page = AdminClient(served.url, ADMIN).call(
        "GET", "/admin/v1/ledger", principal="interns", kind="job"
    )
    assert [e["decision"] for e in page["entries"]] == ["deny"]


def test_device_hours_budgets_hold_devices_x_max_runtime_and_charge_device_seconds(
    server: Env,
) -> None:
    served, keys, _ = server
    job = {"queue": "students", "gpus": 1, "command": script()}
    refused = submit(served, keys["students"], **job, max_runtime_s=60)
    assert refused.status_code == 429
    assert "acme/students device_hours/day exceeded" in refused.json()["error"]["message"]
    created = submit(served, keys["students"], **job, max_runtime_s=10).json()
    assert created["reserved_device_hours"] == pytest.approx(10 / 3600)
    done = wait_for(served, created["id"], "succeeded")
    budgets = AdminClient(served.url, ADMIN).call("GET", "/admin/v1/budgets", principal="students")
    [budget] = [b for b in budgets["budgets"] if b["unit"] == "device_hours"]
    assert budget["spent"] == pytest.approx(done["device_seconds"] / 3600, rel=1e-6)
    assert budget["reserved"] == 0


def test_policies_see_job_submissions(server: Env) -> None:
    served, keys, _ = server
    body = {"queue": "research", "gpus": 6, "priority": "critical", "command": script()}
    refused = submit(served, keys["research"], **body)
    assert refused.status_code == 403
    err = refused.json()["error"]
    assert err["code"] == "policy_denied" and "critical jobs take at most 4 GPUs" in err["message"]
    page = AdminClient(served.url, ADMIN).call(
        "GET", "/admin/v1/ledger", principal="research", decision="deny"
    )
    assert any(e["kind"] == "job" and "critical-is-small" in e["reasons"] for e in page["entries"])


def test_a_job_a_policy_holds_waits_for_a_human(server: Env) -> None:
    served, keys, _ = server
    admin = AdminClient(served.url, ADMIN)
    body = {"queue": "research", "gpus": 1, "max_runtime_s": 2000, "command": script()}
    held = [submit(served, keys["research"], **body).json() for _ in range(2)]
    assert all(j["status"] == "queued" and "awaiting approval" in j["reason"] for j in held)
    pending = {
        a["id"]: a
        for a in admin.call("GET", "/admin/v1/approvals", status="pending")["approvals"]
        if a["tier"] == "job"
    }
    assert len(pending) == 2 and {a["tool"] for a in pending.values()} == {"research"}
    by_job = {j["id"]: j["reason"].split()[2] for j in held}
    approved = governd_cli(served.url, ADMIN, "approvals", "approve", by_job[held[0]["id"]])
    assert approved.returncode == 0, approved.stderr
    governd_cli(served.url, ADMIN, "approvals", "deny", by_job[held[1]["id"]], "--by", "alice")
    done = wait_for(served, held[0]["id"], "succeeded")
    assert [e["event"] for e in done["events"]][:2] == ["awaiting_approval", "approved"]
    refused = wait_for(served, held[1]["id"], "cancelled")
    assert refused["reason"].startswith("denied by alice") and refused["runtime_s"] == 0
    recorded = entry(served, held[1]["id"])
    assert recorded["decision"] == "deny" and recorded["status"] == 403
    third = submit(served, keys["research"], **body).json()
    cancelled = admin.call("POST", f"/admin/v1/jobs/{third['id']}/cancel")
    assert cancelled["status"] == "cancelled"
    still = admin.call("GET", "/admin/v1/approvals", status="pending")["approvals"]
    assert not [a for a in still if a["tier"] == "job"], "its approval went with it"
    assert (
        len(
            [
                e
                for e in admin.call("GET", "/admin/v1/ledger", limit=1000)["entries"]
                if e["id"] == third["id"]
            ]
        )
        == 1
    )


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"queue": "nope", "gpus": 1, "command": ["true"]}, 400, "queue"),
        ({"queue": "research", "gpus": 9, "command": ["true"]}, 400, "gpus"),
        ({"queue": "research", "gpus": 1, "command": []}, 400, "command"),
        ({"queue": "research", "gpus": 1, "command": ["true"], "flavor": "a10g"}, 400, "flavor"),
        ({"queue": "research", "gpus": 1, "command": ["true"], "priority": "vip"}, 400, "priority"),
        ({"queue": "research", "gpus": "2", "command": ["true"]}, 400, "gpus"),
        ({"queue": "research", "gpus": 1, "command": ["true"], "principal": "x"}, 400, None),
        ({"queue": "interns", "gpus": 1, "command": ["true"]}, 403, None),
    ],
)
def test_bad_submissions_are_refused_naming_what_is_wrong(
    server: Env, body: dict[str, Any], status: int, param: str | None
) -> None:
    served, keys, _ = server
    r = submit(served, keys["research"], **body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param and "Traceback" not in err["message"]


def test_the_cli_submits_shows_cancels_and_reads_logs(server: Env, tmp_path: Path) -> None:
    served, _, _ = server
    out = governd_cli(
        served.url,
        ADMIN,
        "jobs",
        "submit",
        "--queue",
        "research",
        "--gpus",
        "2",
        "--principal",
        "research",
        "--max-runtime",
        "2m",
        "--json",
        "--",
        *script(str(tmp_path / "m")),
    )
    assert out.returncode == 0, out.stderr
    job_id = json.loads(out.stdout)["id"]
    wait_for(served, job_id, "running", seen="devices")
    logs = governd_cli(served.url, ADMIN, "jobs", "logs", job_id)
    assert "devices" in logs.stdout and "units box:" in logs.stdout
    cancelled = governd_cli(served.url, ADMIN, "jobs", "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    job = wait_for(served, job_id, "cancelled")
    assert job["reason"] == "cancelled by admin" and job["exit_code"] == -15
    shown = governd_cli(served.url, ADMIN, "jobs", "show", job_id)
    assert "cancelled: cancelled by admin" in shown.stdout and "preemption(s)" in shown.stdout
    listed = governd_cli(served.url, ADMIN, "jobs", "list", "--principal", "research")
    assert job_id in listed.stdout
    with pytest.raises(AdminError) as missing:
        AdminClient(served.url, ADMIN).call("GET", "/admin/v1/jobs/job_nope")
    assert missing.value.status == 404
    unknown = governd_cli(served.url, ADMIN, "jobs", "show", "job_nope")
    assert unknown.returncode == 1 and "no job job_nope" in unknown.stderr
    submit_cmd = ["jobs", "submit", "--gpus", "1"]
    for extra, code, message in (
        (["--queue", "research", "--max-runtime", "5x"], 2, "invalid duration '5x'"),
        (["--queue", "research", "--env", "NOEQUALS"], 2, "NAME=VALUE"),
        (["--queue", "nope"], 1, "unknown queue 'nope'"),
    ):
        out = governd_cli(served.url, ADMIN, *submit_cmd, *extra, "--", "true")
        assert out.returncode == code and message in out.stderr, (extra, out.stderr)


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_jobs_survive_a_governd_restart(tmp_path: Path, how: str) -> None:
    """A graceful stop requeues running jobs; after kill -9 the orphaned attempt is killed first."""
    config = write_yaml(tmp_path / "governd.yaml", CONFIG.replace("EXECUTOR", "local"))
    marker = str(tmp_path / "attempt-1")
    with governd_server(tmp_path, config, ADMIN) as served:
        body = {"queue": "research", "gpus": 2, "max_runtime_s": 120, "command": script(marker)}
        job_id = AdminClient(served.url, ADMIN).call(
            "POST", "/admin/v1/jobs", {**body, "principal": "research"}
        )["id"]
        pid = wait_for(served, job_id, "running", seen="devices")["pid"]
        if how == "killed":
            served.process.kill()
            served.process.wait()
            assert alive(pid), "the attempt outlived governd"
    with governd_server(tmp_path, config, ADMIN) as served:
        job = wait_for(served, job_id, "succeeded", seen="second attempt")
    assert not alive(pid)
    events = [(e["event"], e["detail"]) for e in job["events"]]
    if how == "stopped":
        assert ("preempted", "governd stopped") in events and job["preemptions"] == 1
    else:
        assert ("requeued", "governd restarted") in events and job["preemptions"] == 0


def test_a_ray_of_governds_own_runs_jobs(tmp_path: Path) -> None:
    """`executor: ray` starts a Ray inside governd with the inventory's GPUs."""
    config = write_yaml(tmp_path / "governd.yaml", CONFIG.replace("EXECUTOR", "ray"))
    with governd_server(tmp_path, config, ADMIN, env={**RAY_LOOPBACK, **SECRETS}) as served:
        admin = AdminClient(served.url, ADMIN)
        body = {"queue": "research", "gpus": 2, "command": script(), "principal": "research"}
        job_id = admin.call("POST", "/admin/v1/jobs", body)["id"]
        job = wait_for(served, job_id, "succeeded", seen="devices")
        # Its workers are started by governd and inherit its environment: jobs must not.
        body = {**body, "gpus": 1, "command": PRINT_ENV, "env": {"MINE": "yes"}}
        env_job = admin.call("POST", "/admin/v1/jobs", body)["id"]
        seen = job_environment(served, env_job)
    assert len(job["units"]) == 2 and job["exit_code"] == 0
    assert_only_its_own(seen, env_job)
    assert seen["JOBS_SHARED_CACHE"] == SECRETS["JOBS_SHARED_CACHE"]


def test_a_job_waits_while_its_executor_is_unreachable(tmp_path: Path) -> None:
    dead = f"ray://127.0.0.1:{free_port()}"
    config = write_yaml(tmp_path / "governd.yaml", CONFIG.replace("EXECUTOR", dead))
    with governd_server(tmp_path, config, ADMIN) as served:
        admin = AdminClient(served.url, ADMIN)
        body = {"queue": "research", "gpus": 1, "command": ["true"], "principal": "research"}
        job_id = admin.call("POST", "/admin/v1/jobs", body)["id"]
        deadline = time.monotonic() + 30
        while True:  # it was admitted, found no executor, and went back to its queue
            job = admin.call("GET", f"/admin/v1/jobs/{job_id}")
            if job["events"]:
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert job["status"] == "queued" and job["units"] == []
        assert job["reason"] == f"waiting for the executor: nothing answers at {dead}"
        assert job["events"][0]["event"] == "requeued"
        assert admin.call("POST", f"/admin/v1/jobs/{job_id}/cancel")["status"] == "cancelled"


@pytest.mark.timeout(300)  # two Ray heads started for real: slow on a loaded machine
def test_a_job_on_a_ray_head_that_dies_is_queued_again_and_runs_once_it_is_back(
    tmp_path: Path,
) -> None:
    """The head is killed under a running job: the attempt is lost (neither failed nor running
    forever), the job waits for its executor, and runs again on the head started anew."""
    client_port, gcs_port = free_port(), free_port()
    address = f"ray://127.0.0.1:{client_port}"
    config = write_yaml(
        tmp_path / "governd.yaml",
        CONFIG.replace("EXECUTOR", address).replace(
            "default_max_runtime_s: 5", "default_max_runtime_s: 300"
        ),
    )
    marker = str(tmp_path / "attempt-1")
    body = {"queue": "research", "gpus": 2, "command": script(marker), "principal": "research"}
    # Ray's client waits 30 s for a server that went away before it gives up: 3 s here.
    env = {**RAY_LOOPBACK, "RAY_CLIENT_RECONNECT_GRACE_PERIOD": "3"}
    heads = contextlib.ExitStack()
    heads.enter_context(ray_head(tmp_path / "ray-1", client_port, gcs_port))
    job_id = ""
    try:
        with governd_server(tmp_path, config, ADMIN, env=env) as served:
            admin = AdminClient(served.url, ADMIN)
            job_id = admin.call("POST", "/admin/v1/jobs", body)["id"]
            wait_for(served, job_id, "running", seen="devices")
            heads.close()  # the head goes, and every Ray process with it
            lost = wait_for(served, job_id, "queued")
            requeued = [e["detail"] for e in lost["events"] if e["event"] == "requeued"]
            # Then it waits for the executor (the reason says what the last try found).
            assert any(d.startswith("Ray lost the attempt") for d in requeued), lost["events"]
            assert lost["reason"].startswith("waiting for the executor")
            assert lost["units"] == [] and lost["runtime_s"] > 0  # it held its devices until then
            heads.enter_context(ray_head(tmp_path / "ray-2", client_port, gcs_port))
            done = wait_for(served, job_id, "succeeded", seen="second attempt")
            recorded = entry(served, job_id)
    finally:
        heads.close()
        _kill_attempts_left(job_id)  # the first attempt's process outlived its Ray worker
    assert [e["event"] for e in done["events"]].count("started") >= 2
    assert recorded["status"] == 200 and done["exit_code"] == 0


def _kill_attempts_left(job_id: str) -> None:
    """SIGKILL every process of this machine that runs an attempt of ``job_id``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if f"GOVERND_JOB_ID={job_id}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)


def test_what_is_stored_of_each_job_catches_up_with_every_cycle(tmp_path: Path) -> None:
    """Many submissions racing scheduling cycles: each stored row ends with the latest reason."""
    config = write_yaml(
        tmp_path / "governd.yaml",
        CONFIG.replace("EXECUTOR", "local").replace(
            "research: {principals: [research], quotas: {h100: {nominal: 8}}}",
            "research: {principals: [research], quotas: {h100: {nominal: 0}}}",
        ),
    )
    with governd_server(tmp_path, config, ADMIN) as served:
        admin = AdminClient(served.url, ADMIN)
        body = {
            "queue": "research",
            "principal": "research",
            "command": ["true"],
            "max_runtime_s": 1,
        }
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: admin.call("POST", "/admin/v1/jobs", {**body, "gpus": 1 + i % 2}),
                    range(300),
                )
            )
        deadline = time.monotonic() + 30
        while True:
            rows = admin.call("GET", "/admin/v1/jobs", status="queued", limit=1000)["jobs"]
            stale = [j["id"] for j in rows if j["reason"] == "queued"]
            if len(rows) == 300 and not stale:
                break
            assert time.monotonic() < deadline, f"{len(stale)} rows never got their reason"
            time.sleep(0.05)
    assert {j["reason"].split(":")[0] for j in rows} <= {"quota", "no room"}


def test_a_held_job_still_waits_for_its_approval_after_a_restart(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "governd.yaml", CONFIG.replace("EXECUTOR", "local"))
    body = {"queue": "research", "gpus": 1, "max_runtime_s": 2000, "principal": "research"}
    with governd_server(tmp_path, config, ADMIN) as served:
        job = AdminClient(served.url, ADMIN).call(
            "POST", "/admin/v1/jobs", {**body, "command": script()}
        )
    approval = job["reason"].split()[2]
    with governd_server(tmp_path, config, ADMIN) as served:
        admin = AdminClient(served.url, ADMIN)
        assert admin.call("GET", f"/admin/v1/jobs/{job['id']}")["status"] == "queued"
        admin.call("POST", f"/admin/v1/approvals/{approval}/approve", {"by": "bob"})
        done = wait_for(served, job["id"], "succeeded")
    assert ("approved", f"{approval} by bob") in [(e["event"], e["detail"]) for e in done["events"]]
