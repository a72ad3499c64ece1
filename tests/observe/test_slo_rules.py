"""The SLOs as Prometheus rules: valid for promtool, and firing when governd's evaluator does.

``promtool test rules`` evaluates the generated rules over a counter series
that governd's own evaluator is fed too: a steady 80 good and 40 bad calls a
minute from minute 60 (a burn of 3.33 against a factor of 3). Both page after
the 10m window fills past the factor, about 8.6 minutes in.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from governd.config import load_config
from governd.config.slos import BurnPair
from governd.ledger.slos.evaluator import SloEvaluator
from governd.observe.slo_rules import render, slo_rules
from governd.testing.slos import slo_config

PROMTOOL = shutil.which("promtool")
SLO = slo_config(
    group_by=["deployment"],
    alerts=[BurnPair(severity="page", long=600, short=120, budget_percent=50)],
    no_data=3600,
)
STEP = 15  # seconds between samples
ONSET = 240  # samples: minute 60


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool is not installed (apt-get install prometheus)"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def evaluator_fires_at() -> float:
    ev = SloEvaluator([SLO], 0)
    for k in range(1, 481):
        ev.add("avail", k * STEP - 0.5, 20, 10 if k > ONSET else 0, (("deployment", "a"),))
        if any(t.severity == "page" for t in ev.tick(k * STEP)):
            return k * STEP
    raise AssertionError("the evaluator never paged")


def test_each_slo_gets_its_windows_budget_left_and_alerts() -> None:
    (group,) = slo_rules([SLO])["groups"]
    records = [r["record"] for r in group["rules"] if "record" in r]
    assert records == [
        "governd_slo:error_ratio:rate2m",
        "governd_slo:error_ratio:rate10m",
        "governd_slo:error_ratio:rate1h",
        "governd_slo:error_budget_remaining:ratio",
    ]
    assert [r["alert"] for r in group["rules"] if "alert" in r] == [
        "SloErrorBudgetBurn",
        "SloNoData",
    ]
    assert "> 3 * 0.1 and" in group["rules"][4]["expr"]


def test_promtool_accepts_the_rules_and_they_page_when_governd_does(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(render([SLO]))
    checked = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    fired = evaluator_fires_at()
    assert 60 * 60 + 8 * 60 < fired <= 60 * 60 + 9 * 60 + 30
    minutes = int(fired // 60)
    labels = {"severity": "page", "slo": "avail", "service": "governd", "deployment": "a"}
    spec = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {
                        "series": 'governd_slo_events_total{slo="avail",deployment="a",outcome="good"}',
                        "values": "0+20x480",
                    },
                    {
                        "series": 'governd_slo_events_total{slo="avail",deployment="a",outcome="bad"}',
                        "values": f"0x{ONSET - 1} 0+10x{480 - ONSET}",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": f"{minutes - 2}m",
                        "alertname": "SloErrorBudgetBurn",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": f"{minutes + 2}m",
                        "alertname": "SloErrorBudgetBurn",
                        "exp_alerts": [
                            {
                                "exp_labels": labels,
                                "exp_annotations": {
                                    "summary": "avail is burning its error budget (page: 10m/2m)"
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(spec))
    tested = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_example_configs_rules_pass_promtool(tmp_path: Path) -> None:
    slos = load_config("examples/governd.yaml").slos
    assert len(slos) == 3
    (tmp_path / "rules.yml").write_text(render(list(slos)))
    checked = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: " in checked.stdout
