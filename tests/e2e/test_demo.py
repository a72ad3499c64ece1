"""`governd demo` runs end to end on the embedded defaults."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_and_prints_the_ledger_table() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "governd", "demo", "--requests", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for principal in (
        "acme/research/agents",
        "acme/support/chatbot",
        "acme/platform",
        "(no valid key)",
    ):
        assert principal in out.stdout
    assert "policy_denied" in out.stdout
    jobs = [line for line in out.stdout.splitlines() if "│ job_" in line]
    assert len(jobs) == 2 and all("succeeded" in line for line in jobs)
    assert "reclaim_within_cohort" in jobs[1], "the borrowing training job gave back its 2 GPUs"
