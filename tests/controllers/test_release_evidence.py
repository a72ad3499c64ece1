"""Launch-gate evidence: promptfoo's output and governd's format, fresh, at threshold, about this canary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from governd.config.releases import Evidence
from governd.controllers.release_evidence import GOVERND_FORMAT, judge_evidence

TARGET = "sha256:" + "a" * 64
NOW = time.time()


def iso(age_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - age_s))


def promptfoo(
    successes: int = 95, failures: int = 5, target: str = TARGET, age_s: float = 60
) -> dict[str, Any]:
    scores = [
        {"namedScores": {"accuracy": 0.8}},
        {"namedScores": {"accuracy": 1.0}},
        {"namedScores": {}},
    ]
    return {
        "evalId": "e",
        "results": {
            "timestamp": iso(age_s),
            "results": scores,
            "stats": {"successes": successes, "failures": failures, "errors": 0},
        },
        "config": {"tags": {"governd_target": target}},
    }


def ours(
    value: float = 0.93, threshold: float = 0.9, target: str = TARGET, age_s: float = 60
) -> dict[str, Any]:
    metrics = [{"metric": "accuracy", "value": value, "threshold": threshold}]
    return {
        "format": GOVERND_FORMAT,
        "target": target,
        "created_at": iso(age_s),
        "metrics": metrics,
    }


@pytest.mark.parametrize(
    ("data", "fmt", "metric", "threshold", "holds", "why"),
    [
        (promptfoo(), "promptfoo", "pass_rate", 0.9, True, "pass_rate 0.95 >= 0.9"),
        (promptfoo(successes=80, failures=20), "promptfoo", "pass_rate", 0.9, False, "below 0.9"),
        (promptfoo(), "promptfoo", "accuracy", 0.85, True, "accuracy 0.9 >= 0.85"),
        (
            promptfoo(),
            "promptfoo",
            "fluency",
            0.5,
            False,
            "no result has the named score 'fluency'",
        ),
        (
            promptfoo(target="sha256:" + "b" * 64),
            "promptfoo",
            "pass_rate",
            0.9,
            False,
            "not this canary",
        ),
        (promptfoo(age_s=8 * 86400), "promptfoo", "pass_rate", 0.9, False, "h old"),
        (promptfoo(successes=0, failures=0), "promptfoo", "pass_rate", 0.9, False, "no test ran"),
        ({"results": {}}, "promptfoo", "pass_rate", 0.9, False, "not promptfoo evaluation output"),
        (ours(), "governd", "accuracy", 0.9, True, "accuracy 0.93 >= 0.9"),
        (ours(threshold=0.95), "governd", "accuracy", 0.9, False, "below 0.95"),
        (ours(), "governd", "recall", 0.9, False, "no metric 'recall'"),
        ({**ours(), "format": "other"}, "governd", "accuracy", 0.9, False, "format is not"),
        (
            {**ours(), "created_at": "2026-12-07T10:00:00"},
            "governd",
            "accuracy",
            0.9,
            False,
            "no timezone",
        ),
    ],
)
def test_evidence(
    tmp_path: Path,
    data: dict[str, Any],
    fmt: str,
    metric: str,
    threshold: float,
    holds: bool,
    why: str,
) -> None:
    file = tmp_path / "eval.json"
    file.write_text(json.dumps(data))
    found = judge_evidence(
        Evidence(file=str(file), format=fmt, metric=metric, threshold=threshold), TARGET, NOW
    )  # type: ignore[arg-type]
    assert found.holds is holds and why in found.why, found


@pytest.mark.parametrize(
    ("content", "why"), [(None, "cannot read it"), ("{not json", "cannot read it")]
)
def test_unreadable_evidence_is_named(tmp_path: Path, content: str | None, why: str) -> None:
    file = tmp_path / "eval.json"
    if content is not None:
        file.write_text(content)
    found = judge_evidence(Evidence(file=str(file), threshold=0.9), TARGET, NOW)
    assert not found.holds and why in found.why
