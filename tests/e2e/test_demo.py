"""`governd demo` runs end to end on the embedded defaults, and on a config of one's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import write_yaml


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
    # The loop: sim-b slows down, its latency SLO pages, the policy drains it, then undoes it.
    assert "mini-latency paged for deployment=sim-b/sim-small" in out.stdout
    assert "its policy took shift_route on sim-b/sim-small" in out.stdout
    assert "the next 20 calls: 0 to sim-b, 20 to sim-a" in out.stdout
    assert "the page resolved and the drain was undone" in out.stdout
    assert "model gpt-4o-mini" in out.stdout and "[principals.teams.support.models]" in out.stdout


OWN = """
principals:
  org: lab
  teams:
    alpha: {projects: {bots: {}}}
    beta: {models: [small]}
upstreams: {sim: {kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
models:
  small: {deployments: [{upstream: sim, model: s}], pricing: {input: 1, output: 1}}
  vectors: {kind: embedding, deployments: [{upstream: sim, model: e}]}
"""
NOTHING_TO_CALL = """
principals: {org: lab, teams: {alpha: {models: []}}}
upstreams: {sim: {kind: sim}}
models: {small: {deployments: [{upstream: sim, model: s}]}}
"""


def demo(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "governd", "demo", "--requests", "20", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )


def test_the_demo_drives_any_configs_own_principals_and_models(tmp_path: Path) -> None:
    """A config without the demo's tenants (acme/research, ...) is driven on its own."""
    out = demo(write_yaml(tmp_path / "own.yaml", OWN))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    for principal in ("lab/alpha/bots", "lab/beta", "(no valid key)"):
        assert principal in out.stdout


def test_the_demo_refuses_a_config_with_nothing_to_call_in_one_line(tmp_path: Path) -> None:
    out = demo(write_yaml(tmp_path / "none.yaml", NOTHING_TO_CALL))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "no team or project in it may call a model" in out.stderr
