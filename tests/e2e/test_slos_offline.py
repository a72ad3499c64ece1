"""``governd slos backtest`` and ``rules`` as a user runs them: from files, no server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from governd.ledger.entries import LedgerEntry
from governd.ledger.storage import Storage
from tests.conftest import write_yaml

SLOS = """
slos:
  - name: avail
    objective: 90
    window: 1h
    sli: availability
    no_data: null
    alerts: [{severity: page, long: 10m, short: 1m, budget_percent: 50}]
  - name: slow
    objective: 99
    sli: latency
    threshold: 250
"""


def backtest(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return slos(tmp, "backtest", *args)


def slos(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERND_")}
    return subprocess.run(
        [sys.executable, "-m", "governd", "slos", *args],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_counts_from_jsonl_print_every_transition(tmp_path: Path) -> None:
    slos = write_yaml(tmp_path / "slos.yaml", SLOS)
    # One call a second, failing from 1000 s to 1300 s: the evaluator's hand-counted case
    # (tests/ledger/slos/test_evaluator.py), the counts 1 ms before each second's end.
    lines = [
        json.dumps(
            {"ts": s + 1, "good": 0 if 1000 <= s < 1300 else 1, "bad": 1 if 1000 <= s < 1300 else 0}
        )
        for s in range(1400)
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    out = backtest(
        tmp_path, "--slo-file", str(slos), "--slo", "avail", "--events", "events.jsonl", "--json"
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["severity"], r["state"], r["at"]) for r in rows] == [
        ("page", "fired", 1180),
        ("page", "resolved", 1342),
    ]
    assert rows[0]["time"] == "1970-01-01 00:19:40"
    text = backtest(tmp_path, "--slo-file", str(slos), "--slo", "avail", "--events", "events.jsonl")
    assert text.stdout.splitlines()[0].startswith("1970-01-01 00:19:40  page      fired     avail")
    assert "burn 1m=10.00 10m=3.05" in text.stdout
    assert text.stdout.splitlines()[-1] == (
        "1,400 events replayed from 1970-01-01 00:00:00 to 1970-01-01 00:23:19: 2 transitions and actions"
    )


def test_a_ledger_file_replays_through_every_slo(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'ledger.db'}")
    storage.append(
        [
            LedgerEntry(
                id=f"req_{i}",
                ts=1000.0 + i,
                kind="model_call",
                operation="chat",
                principal="acme/t",
                latency_ms=900.0 if i >= 100 else 20.0,
            )
            for i in range(400)
        ]
    )
    storage.close()
    slos = write_yaml(tmp_path / "slos.yaml", SLOS)
    out = backtest(
        tmp_path,
        "--slo-file",
        str(slos),
        "--ledger",
        "--storage",
        f"sqlite:///{tmp_path / 'ledger.db'}",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    fired = {
        (r["slo"], r["severity"])
        for r in map(json.loads, out.stdout.splitlines())
        if r["state"] == "fired"
    }
    assert fired == {("slow", "page"), ("slow", "ticket")}


def test_what_is_wrong_is_said_in_one_line(tmp_path: Path) -> None:
    slos = write_yaml(tmp_path / "slos.yaml", SLOS)
    (tmp_path / "bad.jsonl").write_text('{"ts": 1, "good": 1}\n{"ts": 2, "good": "x"}\n')
    cases = [
        (
            ["--slo-file", str(slos), "--slo", "avail", "--events", "bad.jsonl"],
            "bad.jsonl: line 2: good must be a count",
        ),
        (["--slo-file", str(slos), "--events", "bad.jsonl"], "pick it with --slo (avail, slow)"),
        (["--slo-file", str(slos), "--slo", "nope", "--ledger"], "no SLO named 'nope'"),
        (["--slo-file", str(slos), "--ledger", "--storage", "sqlite:///missing.db"], "missing.db"),
        (["--slo-file", str(slos)], "give one of --ledger or --events"),
    ]
    for args, message in cases:
        out = backtest(tmp_path, *args)
        assert out.returncode != 0, args
        assert message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_rules_for_prometheus_pass_promtool(tmp_path: Path) -> None:
    write_yaml(tmp_path / "slos.yaml", SLOS)
    out = slos(tmp_path, "rules", "--slo-file", "slos.yaml", "--slo", "slow")
    assert out.returncode == 0, out.stderr
    (tmp_path / "rules.yml").write_text(out.stdout)
    assert "governd-slo-slow" in out.stdout and "governd-slo-avail" not in out.stdout
    checked = subprocess.run(
        ["promtool", "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    unknown = slos(tmp_path, "rules", "--slo-file", "slos.yaml", "--slo", "nope")
    assert (
        unknown.returncode == 2 and "no SLO named 'nope' (there are: avail, slow)" in unknown.stderr
    )
    assert "Traceback" not in unknown.stderr
