"""Evaluation evidence a release needs before it starts: fresh, good enough, and about its canary.

Two formats:

- promptfoo's JSON output (``promptfoo eval --output results.json``): the
  metric is ``pass_rate`` (``results.stats``: successes over all tests) or a
  named score (its mean over ``results.results[*].namedScores``); the time is
  ``results.timestamp``; the target is the ``governd_target`` tag of the
  promptfoo config (``tags: {governd_target: sha256:...}``), which promptfoo
  copies into its output.
- governd's own: ``{"format": "governd.eval.v1", "target": "sha256:...",
  "created_at": "2026-12-07T10:00:00Z", "metrics": [{"metric": "accuracy",
  "value": 0.93, "threshold": 0.9}]}``; a metric passes when its value is at
  least the larger of its own threshold and the gate's.

Evidence counts only for the exact canary it names (``Target.digest``) and
only while younger than ``max_age``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from governd.config.releases import Evidence

GOVERND_FORMAT = "governd.eval.v1"


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of evidence judged: whether it holds, and the figures."""

    file: str
    holds: bool
    why: str
    value: float | None = None
    age_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for entries and the API."""
        return {
            "file": self.file,
            "holds": self.holds,
            "why": self.why,
            "value": self.value,
            "age_s": self.age_s,
        }


def judge_evidence(evidence: Evidence, digest: str, now: float) -> Finding:
    """Whether ``evidence`` is readable, about ``digest``, fresh and at its threshold."""
    try:
        data = json.loads(Path(evidence.file).read_text())
    except (OSError, ValueError) as exc:
        return Finding(evidence.file, False, f"cannot read it: {type(exc).__name__}: {exc}")
    try:
        target, at, value, own = (
            _promptfoo(data, evidence.metric)
            if evidence.format == "promptfoo"
            else _governd(data, evidence.metric)
        )
    except (KeyError, TypeError, ValueError) as exc:
        return Finding(evidence.file, False, f"not {evidence.format} evaluation output: {exc}")
    age = now - at
    threshold = max(evidence.threshold, own)
    if target != digest:
        why = f"it evaluated {target or 'no named target'}, not this canary ({digest})"
        return Finding(evidence.file, False, why, value, age)
    if age > evidence.max_age:
        return Finding(
            evidence.file,
            False,
            f"{age / 3600:.1f} h old, more than {evidence.max_age / 3600:.1f} h",
            value,
            age,
        )
    if value < threshold:
        return Finding(
            evidence.file, False, f"{evidence.metric} {value:.4g} below {threshold:.4g}", value, age
        )
    return Finding(
        evidence.file, True, f"{evidence.metric} {value:.4g} >= {threshold:.4g}", value, age
    )


def _promptfoo(data: dict[str, Any], metric: str) -> tuple[str | None, float, float, float]:
    results = data["results"]
    target = (data.get("config") or {}).get("tags", {}).get("governd_target")
    at = _time(results["timestamp"])
    if metric == "pass_rate":
        stats = results["stats"]
        done = stats["successes"] + stats["failures"] + stats.get("errors", 0)
        if not done:
            raise ValueError("no test ran")
        return target, at, stats["successes"] / done, 0.0
    scores = [
        r["namedScores"][metric]
        for r in results["results"]
        if metric in (r.get("namedScores") or {})
    ]
    if not scores:
        raise ValueError(f"no result has the named score {metric!r}")
    return target, at, sum(scores) / len(scores), 0.0


def _governd(data: dict[str, Any], metric: str) -> tuple[str | None, float, float, float]:
    if data.get("format") != GOVERND_FORMAT:
        raise ValueError(f"format is not {GOVERND_FORMAT!r}")
    for m in data["metrics"]:
        if m["metric"] == metric:
            return (
                data["target"],
                _time(data["created_at"]),
                float(m["value"]),
                float(m.get("threshold") or 0.0),
            )
    raise ValueError(f"no metric {metric!r}")


def _time(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone")
    return parsed.timestamp()
