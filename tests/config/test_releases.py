"""``releases:`` in governd.yaml: what loads, each mistake named at its key, and a target's digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from governd.config import ConfigError, load_config, parse_config
from governd.config.releases import Target

BASE = """
upstreams: {sim-a: {kind: sim}, sim-b: {kind: sim}}
models:
  chat: {deployments: [{upstream: sim-a, model: a}, {upstream: sim-b, model: b}]}
  solo: {deployments: [{upstream: sim-a, model: s}]}
policies: [{id: guard, when: 'request.n > 8', effect: deny}, {id: shadowed, when: 'true', effect: deny, mode: shadow}]
slos:
  - {name: avail, objective: 99, sli: availability}
  - {name: tools, objective: 99, kind: tool_call, bad: 'entry.status >= 500'}
releases:
  - RELEASE
"""
GOOD = "{name: r, model: chat, canary: {deployment: sim-b/b2}, steps: [{set_weight: 10}]}"


def load(release: str) -> list[tuple[str, str]]:
    try:
        parse_config(BASE.replace("RELEASE", release))
    except ConfigError as exc:
        return [(p.path, p.message) for p in exc.problems]
    return []


def test_a_release_loads_with_its_defaults() -> None:
    (r,) = parse_config(BASE.replace("RELEASE", GOOD)).releases
    assert (r.sticky, r.gates.tier, r.headroom.max_budget_per_step) == ("principal", "low", 0.05)
    assert r.steps[0].kind == "set_weight" and r.analysis.confidence == 0.95
    assert r.stable.describe() == "the alias as configured"


@pytest.mark.parametrize(
    ("release", "path", "fragment"),
    [
        (
            "{name: r, model: nope, canary: {deployment: sim-b/x}, steps: [{set_weight: 5}]}",
            "releases.0.model",
            "unknown model 'nope'",
        ),
        (
            "{name: r, model: chat, canary: {deployment: gone/x}, steps: [{set_weight: 5}]}",
            "releases.0.canary.deployment",
            "unknown upstream 'gone'",
        ),
        (
            "{name: r, model: chat, canary: {deployment: nope}, steps: [{set_weight: 5}]}",
            "releases.0.canary.deployment",
            "should match",
        ),
        (
            "{name: r, model: solo, canary: {deployment: sim-a/s}, steps: [{set_weight: 5}]}",
            "releases.0.canary.deployment",
            "only deployment",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{set_weight: 5}], analysis: {slo: nope}}",
            "releases.0.analysis.slo",
            "unknown slo 'nope'",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{set_weight: 5}], analysis: {slo: tools}}",
            "releases.0.analysis.slo",
            "not model calls",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{set_weight: 5}], gates: {safeguards: [shadowed]}}",
            "releases.0.gates.safeguards.0",
            "not an enforced policy",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{set_weight: 5, pause: {duration: 1m}}]}",
            "releases.0.steps.0",
            "exactly one of set_weight, pause or analysis",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{pause: {}}]}",
            "releases.0.steps.0.pause",
            "needs `duration`, `min_events` or both",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{set_weight: 150}]}",
            "releases.0.steps.0.set_weight",
            "less than or equal to 100",
        ),
        (
            "{name: r, model: chat, canary: {}, steps: [{set_weight: 5}]}",
            "releases.0",
            "needs a deployment or a system_prompt",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/b}, stable: {deployment: sim-b/b}, steps: [{set_weight: 5}]}",
            "releases.0",
            "the canary is the stable target",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: []}",
            "releases.0.steps",
            "at least 1",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{set_weight: 5}], analysis: {latency: {allowed: 0.5, critical: 0.1}}}",
            "releases.0.analysis.latency",
            "at least `allowed`",
        ),
        (
            "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{analysis: {min: 3}}]}",
            "releases.0.steps.0",
            "analysis takes no options",
        ),
    ],
)
def test_a_bad_release_is_named_at_its_key(release: str, path: str, fragment: str) -> None:
    problems = load(release)
    assert any(at == path and fragment in message for at, message in problems), problems


def test_release_names_are_unique() -> None:
    assert load(f"{GOOD}\n  - {GOOD}") == [("releases.1.name", "duplicate release name 'r'")]


def test_a_target_is_named_by_a_digest_of_what_serves() -> None:
    base = Target(deployment="sim/b")
    assert base.digest() == Target(deployment="sim/b").digest()
    others = {
        Target(deployment="sim/c").digest(),
        Target(deployment="sim/b", system_prompt="Be brief.").digest(),
        Target(deployment="sim/b", system_prompt="Be brief!").digest(),
        Target(system_prompt="Be brief.").digest(),
    }
    assert len(others) == 4 and base.digest() not in others
    assert base.digest().startswith("sha256:") and len(base.digest()) == 7 + 64


def test_evidence_files_resolve_against_the_configs_folder(tmp_path: Path) -> None:
    text = BASE.replace(
        "RELEASE",
        "{name: r, model: chat, canary: {deployment: sim-b/x}, steps: [{set_weight: 5}], "
        "gates: {evidence: [{file: evals/r.json, threshold: 0.9}, {file: /abs/r.json, threshold: 0.9}]}}",
    )
    (tmp_path / "governd.yaml").write_text(text)
    (r,) = load_config(tmp_path / "governd.yaml").releases
    assert [e.file for e in r.gates.evidence] == [str(tmp_path / "evals/r.json"), "/abs/r.json"]
