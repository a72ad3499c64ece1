"""The demo's GPU-job part: a borrower preempted by a lender reclaiming its quota, then requeued."""

from __future__ import annotations

import sys
import time
from typing import Any

from governd.cli.admin_client import AdminClient

#: Prints its devices; a first attempt trains until stopped, a later one finishes at once.
TRAIN = """
import os, sys, time
if os.path.exists(sys.argv[1]):
    print("resumed on GPUs", os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
    sys.exit(0)
open(sys.argv[1], "w").close()
print("training on GPUs", os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(600)
"""
EVAL = "import os; print('evaluating on GPUs', os.environ['CUDA_VISIBLE_DEVICES'])"


def run_gpu_jobs(admin: AdminClient, marker: str) -> list[dict[str, Any]]:
    """Submit the two jobs, wait until both finished, and return their rows."""
    train = admin.call(
        "POST",
        "/admin/v1/jobs",
        {
            "queue": "training",
            "gpus": 8,
            "priority": "batch",
            "max_runtime_s": 300,
            "principal": "research",
            "command": [sys.executable, "-c", TRAIN, marker],
        },
    )
    _wait(admin, train["id"], "running", seen="training on GPUs")
    urgent = admin.call(
        "POST",
        "/admin/v1/jobs",
        {
            "queue": "platform",
            "gpus": 2,
            "priority": "critical",
            "max_runtime_s": 60,
            "principal": "platform",
            "command": [sys.executable, "-c", EVAL],
        },
    )
    return [_wait(admin, job["id"], "succeeded", "failed") for job in (urgent, train)]


def _wait(admin: AdminClient, job_id: str, *statuses: str, seen: str = "") -> dict[str, Any]:
    """Poll until the job has one of ``statuses`` (and its output shows ``seen``: it is going)."""
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = admin.call("GET", f"/admin/v1/jobs/{job_id}")
        log = admin.call("GET", f"/admin/v1/jobs/{job_id}/logs")["log"] if seen else ""
        if job["status"] in statuses and seen in log:
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} stayed {job['status']}: {job['reason']}")
        time.sleep(0.05)
