"""Releases end to end: a real ``governd serve`` over sim deployments told to fail at runtime.

Twenty keys call a model alias through the openai SDK; a release moves half
of them (by hashing their keys) to a canary on another sim upstream. A good
canary is promoted through every step; a failing one is rolled back at once
and the next calls are served by stable; an outage of both arms freezes the
release without blaming the canary; too little traffic keeps it paused; a
step that would not fit the budgets is refused with its numbers. Every
transition is a ledger entry, and the chain verifies after.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from governd.cli.admin_client import AdminClient, AdminError
from governd.server.launcher import Served, governd_server
from tests.conftest import governd_cli, write_yaml

ADMIN = "adm-release-e2e"
CONFIG = """
principals:
  org: acme
  teams:
    t:
      budgets: [{{unit: usd, period: day, limit: {budget}}}]
upstreams:
  sim-a: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
  sim-b: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
  sim-c: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
models:
  chat:
    deployments: [{{upstream: sim-a, model: a}}]
    pricing: {{input: 10, output: 10}}
  other:
    deployments: [{{upstream: sim-c, model: c}}]
router: {{retries: 0, breaker_failures: 1000000}}
ledger: {{flush_ms: 5}}
slos:
  - name: avail
    objective: 99
    window: 1h
    sli: availability
    alerts: [{{severity: page, long: 1m, short: 5s, budget_percent: 2}}]
    no_data: null
  - name: elsewhere
    objective: 99
    window: 1h
    filter: 'entry.model == "other"'
    sli: availability
    alerts: [{{severity: page, long: 1m, short: 5s, budget_percent: 2}}]
    no_data: null
    policies: [{{when: page, do: freeze_releases, hold: 0}}]
"""
#: Checks that the sims' sub-millisecond jitter cannot fail: errors decide these tests.
ANALYSIS = {"slo": "avail", "latency": {"allowed": 5, "critical": 50}, "ttft": None}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with server(tmp_path_factory.mktemp("releases")) as found:
        yield found


@contextlib.contextmanager
def server(tmp: Path) -> Iterator[Served]:
    cfg = write_yaml(tmp / "governd.yaml", CONFIG.format(budget=1_000_000))
    with governd_server(tmp, cfg, ADMIN) as found:
        yield found


@pytest.fixture(scope="module")
def clients(served: Served) -> list[openai.OpenAI]:
    return keyed(served)


@pytest.fixture
def burning(tmp_path: Path) -> Iterator[tuple[AdminClient, list[openai.OpenAI]]]:
    """A server of its own, for a test that spends the SLO's error budget (it blocks later steps)."""
    with server(tmp_path) as found:
        yield AdminClient(found.url, ADMIN), keyed(found)


def keyed(served: Served) -> list[openai.OpenAI]:
    """Twenty keys of team t, as openai clients."""
    admin = AdminClient(served.url, ADMIN)
    keys = [admin.call("POST", "/admin/v1/keys", {"principal": "t"})["key"] for _ in range(20)]
    return [openai.OpenAI(base_url=served.url + "/v1", api_key=k, max_retries=0) for k in keys]


@pytest.fixture
def admin(served: Served) -> Iterator[AdminClient]:
    client = AdminClient(served.url, ADMIN)
    yield client
    for sim in ("sim-a", "sim-b"):
        client.call("PUT", f"/admin/v1/upstreams/{sim}/faults", {})
    client.call("POST", "/admin/v1/releases/kill", {"model": "chat", "reason": "test over"})


def release(name: str, steps: list[Any], **spec: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": "chat",
        "canary": {"deployment": "sim-b/b"},
        "steps": steps,
        "analysis": ANALYSIS,
        **spec,
    }


def begin(admin: AdminClient, spec: dict[str, Any]) -> dict[str, Any]:
    """Create a release and start it; its status."""
    admin.call("POST", "/admin/v1/releases", spec)
    started: dict[str, Any] = admin.call("POST", f"/admin/v1/releases/{spec['name']}/start")
    return started


def traffic(clients: list[openai.OpenAI], rounds: int = 1) -> list[str]:
    """One call per key per round; the deployments that served them (``failed`` for a 5xx)."""
    served = []
    for _ in range(rounds):
        for client in clients:
            try:
                reply = client.chat.completions.with_raw_response.create(
                    model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=4
                )
                served.append(reply.parse().model)
            except openai.APIStatusError as exc:
                assert exc.status_code in (502, 503), exc
                served.append("failed")
    return served


def until(
    admin: AdminClient,
    name: str,
    done: Callable[[dict[str, Any]], bool],
    clients: list[openai.OpenAI],
    timeout: float = 60,
) -> dict[str, Any]:
    """Keep every key calling until the release's status says ``done``."""
    deadline = time.monotonic() + timeout
    while not done(status := admin.call("GET", f"/admin/v1/releases/{name}")):
        assert time.monotonic() < deadline, f"not reached: {status['phase']} {status['note']}"
        traffic(clients)
    return status


def history(admin: AdminClient, name: str) -> list[str]:
    found = admin.call("GET", f"/admin/v1/releases/{name}/history?limit=100")["history"]
    return [h["operation"] for h in reversed(found)]


def test_a_good_canary_is_promoted_through_every_step(
    admin: AdminClient, clients: list[openai.OpenAI]
) -> None:
    steps = [{"set_weight": 50}, {"pause": {"min_events": 20}}, {"analysis": {}}]
    started = begin(admin, release("good", steps))
    assert started["phase"] == "running"
    done = until(admin, "good", lambda s: s["phase"] == "promoted", clients, timeout=120)
    assert done["weight"] == 100
    assert set(traffic(clients)) == {"b"}, "promoted: every call on the canary"
    ops = history(admin, "good")
    assert ops[:2] == ["release_created", "release_started"]
    assert ops[-1] == "release_promoted" and ops.count("release_step") == 3
    last = admin.call("GET", "/admin/v1/releases/good/history?limit=1")["history"][0]
    checks = {e["check"]: e["verdict"] for e in last["signals"]["evidence"]}
    assert checks["errors"] == "successful"


def test_a_canary_with_too_little_traffic_waits_and_is_never_promoted(
    admin: AdminClient, clients: list[openai.OpenAI]
) -> None:
    begin(admin, release("quiet", [{"set_weight": 50}, {"analysis": {}}]))
    until(admin, "quiet", lambda s: s["step"] == 1, clients)
    traffic(clients[:4])  # a few calls: far below the 248 the errors check needs
    waiting = until(admin, "quiet", lambda s: "waits" in s["note"], [])
    assert (waiting["phase"], waiting["step"]) == ("running", 1)
    verdicts = {c["check"]: c["verdict"] for c in waiting["checks"]}
    assert verdicts["errors"] == "inconclusive", "never successful for lack of evidence"
    assert "release_promoted" not in history(admin, "quiet")
    assert history(admin, "quiet").count("release_waiting") == 1, "said once, not every tick"


def test_a_step_the_budgets_cannot_afford_is_refused_with_its_numbers(
    admin: AdminClient, clients: list[openai.OpenAI]
) -> None:
    tight = {"principal": "t", "unit": "usd", "period": "day", "limit": 10.0}
    admin.call("PUT", "/admin/v1/budgets", tight)
    try:
        steps = [{"set_weight": 50}, {"pause": {"duration": 86400}}]
        begin(admin, release("dear", steps))
        refused = until(admin, "dear", lambda s: "refused" in s["note"], clients)
        assert (refused["weight"], refused["step"]) == (0, 0)
        room = {r["check"]: r for r in refused["headroom"]}
        assert not room["cost"]["holds"] and room["cost"]["budget"] == "acme/t usd/day"
        assert room["cost"]["charge"] > room["cost"]["left"]
        assert history(admin, "dear")[-1] == "release_blocked"
    finally:
        admin.call("PUT", "/admin/v1/budgets", {**tight, "limit": 1_000_000.0})
    taken = until(admin, "dear", lambda s: s["weight"] == 50, clients)
    assert taken["step"] == 1


def evidence(path: Path, target: str, age_s: float, pass_rate: float = 0.95) -> str:
    """promptfoo's output, as ``promptfoo eval --output`` writes it."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age_s))
    passed = round(pass_rate * 100)
    path.write_text(
        json.dumps(
            {
                "evalId": "eval-1",
                "results": {
                    "version": 3,
                    "timestamp": when,
                    "results": [],
                    "stats": {"successes": passed, "failures": 100 - passed, "errors": 0},
                },
                "config": {"tags": {"governd_target": target}},
            }
        )
    )
    return str(path)


def test_launch_gates_refuse_stale_or_mismatched_evidence_and_wait_for_a_human(
    admin: AdminClient, served: Served, tmp_path: Path
) -> None:
    canary = admin.call("POST", "/admin/v1/releases", release("gated", [{"set_weight": 10}]))[
        "canary"
    ]
    digest = canary["digest"]
    cases = {
        "stale": evidence(tmp_path / "stale.json", digest, age_s=30 * 86400),
        "other": evidence(tmp_path / "other.json", "sha256:" + "0" * 64, age_s=60),
        "poor": evidence(tmp_path / "poor.json", digest, age_s=60, pass_rate=0.5),
    }
    for name, file in cases.items():
        gates = {"tier": "high", "evidence": [{"file": file, "threshold": 0.9, "max_age": "7d"}]}
        admin.call(
            "POST",
            "/admin/v1/releases",
            release(f"gated-{name}", [{"set_weight": 10}], gates=gates),
        )
        with pytest.raises(AdminError) as info:
            admin.call("POST", f"/admin/v1/releases/gated-{name}/start")
        assert info.value.status == 409 and info.value.code == "conflict"
        assert {"stale": "old", "other": "not this canary", "poor": "below"}[name] in str(
            info.value
        )
        admin.call("POST", f"/admin/v1/releases/gated-{name}/abort")
    good = evidence(tmp_path / "good.json", digest, age_s=60)
    gates = {"tier": "high", "evidence": [{"file": good, "threshold": 0.9}]}
    admin.call(
        "POST", "/admin/v1/releases", release("gated-good", [{"set_weight": 10}], gates=gates)
    )
    with pytest.raises(AdminError, match="needs a human") as asked:
        admin.call("POST", "/admin/v1/releases/gated-good/start")
    approval = str(asked.value).rsplit(" ", 1)[-1]
    done = governd_cli(served.url, ADMIN, "approvals", "approve", approval, "--by", "alice")
    assert done.returncode == 0, done.stderr
    started = admin.call("POST", "/admin/v1/releases/gated-good/start")
    assert started["phase"] == "running" and "approved by alice" in started["note"]
    refusals = history(admin, "gated-stale")
    assert "release_refused" in refusals and "release_started" not in refusals


def test_a_run_never_switches_arms_when_the_weight_moves(
    admin: AdminClient, served: Served, clients: list[openai.OpenAI]
) -> None:
    steps = [
        {"set_weight": 30},
        {"pause": {"duration": 3600}},
        {"set_weight": 80},
        {"pause": {"duration": 3600}},
    ]
    begin(admin, release("runs", steps, sticky="run"))
    until(admin, "runs", lambda s: s["weight"] == 30, clients)
    runs = [f"run-{i}" for i in range(30)]
    client = clients[0]

    def arms() -> dict[str, str]:
        out = {}
        for run in runs:
            reply = client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=4,
                extra_headers={"x-governd-run": run},
            )
            out[run] = reply.model
        return out

    before = arms()
    assert set(before.values()) == {"a", "b"}
    admin.call("POST", "/admin/v1/releases/runs/promote")  # skip the pause: to 80%
    until(admin, "runs", lambda s: s["weight"] == 80, clients)
    assert arms() == before, "every run kept its arm"
    fresh = [f"new-{i}" for i in range(30)]
    runs[:] = fresh
    assert list(arms().values()).count("b") > 15, "new runs split at 80%"


def test_the_cli_creates_starts_shows_and_kills_a_release(
    admin: AdminClient, served: Served, tmp_path: Path
) -> None:
    spec = tmp_path / "release.yaml"
    spec.write_text(
        "name: by-cli\nmodel: chat\ncanary: {system_prompt: 'Answer in French.'}\n"
        "steps: [{set_weight: 20}, {pause: {duration: 1h}}]\n"
    )
    created = governd_cli(served.url, ADMIN, "releases", "create", str(spec), "--by", "bob")
    assert created.returncode == 0 and "by-cli: chat created" in created.stdout, created.stderr
    started = governd_cli(served.url, ADMIN, "releases", "start", "by-cli", "--json")
    assert json.loads(started.stdout)["phase"] == "running"
    shown = governd_cli(served.url, ADMIN, "releases", "status", "by-cli")
    assert "canary" in shown.stdout and "system prompt" in shown.stdout
    twice = governd_cli(served.url, ADMIN, "releases", "start", "by-cli")
    assert (
        twice.returncode == 1 and "is running" in twice.stderr and "Traceback" not in twice.stderr
    )
    unknown = governd_cli(served.url, ADMIN, "releases", "status", "nope")
    assert unknown.returncode == 1 and "no release 'nope'" in unknown.stderr
    killed = governd_cli(served.url, ADMIN, "releases", "kill", "--model", "chat")
    assert killed.returncode == 0 and "aborted 1: by-cli" in killed.stdout
    story = governd_cli(served.url, ADMIN, "releases", "history", "by-cli").stdout
    assert "release_created" in story and " bob " in story and "kill switch" in story


def test_a_canary_prompt_reaches_the_upstream_only_on_its_arm(
    admin: AdminClient, clients: list[openai.OpenAI]
) -> None:
    prompt = "You are the canary."
    steps = [{"set_weight": 50}, {"pause": {"duration": 3600}}]
    begin(admin, release("prompted", steps, canary={"system_prompt": prompt}))
    until(admin, "prompted", lambda s: s["weight"] == 50, clients)
    arms = {}
    for client in clients:
        reply = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
        entry = admin.call("GET", f"/admin/v1/ledger/{reply.headers['x-governd-request-id']}")
        arms[json.loads(entry["signals"])["release"]["arm"]] = entry
    assert set(arms) == {"canary", "stable"}
    assert arms["canary"]["input_tokens"] > arms["stable"]["input_tokens"], "the prompt was added"


def test_a_failing_canary_is_rolled_back_and_stable_serves_the_next_calls(
    burning: tuple[AdminClient, list[openai.OpenAI]],
) -> None:
    admin, clients = burning
    begin(admin, release("bad", [{"set_weight": 50}, {"pause": {"duration": 3600}}]))
    on_both = until(admin, "bad", lambda s: s["weight"] == 50, clients)
    assert on_both["phase"] == "running"
    assert set(traffic(clients)) == {"a", "b"}, "half the keys on each arm"
    admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"error_rate": 1.0})
    failing = time.monotonic()
    aborted = until(admin, "bad", lambda s: s["phase"] == "aborted", clients)
    took = time.monotonic() - failing
    assert aborted["weight"] == 0 and "errors" in aborted["note"]
    assert set(traffic(clients)) == {"a"}, "rolled back: every call on stable"
    assert took < 10


def test_both_arms_failing_freezes_the_release_without_blaming_the_canary(
    burning: tuple[AdminClient, list[openai.OpenAI]],
) -> None:
    admin, clients = burning
    begin(admin, release("outage", [{"set_weight": 50}, {"pause": {"duration": 3600}}]))
    until(admin, "outage", lambda s: s["step"] == 1, clients)
    traffic(clients, 3)
    admin.call("PUT", "/admin/v1/upstreams/sim-a/faults", {"error_rate": 1.0})  # stable first
    traffic(clients)
    admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"error_rate": 1.0})
    frozen = until(admin, "outage", lambda s: s["phase"] == "frozen", clients)
    assert frozen["weight"] == 50 and "both arms" in frozen["note"]
    for sim in ("sim-a", "sim-b"):
        admin.call("PUT", f"/admin/v1/upstreams/{sim}/faults", {})
    resumed = until(admin, "outage", lambda s: s["phase"] == "running", clients)
    assert resumed["weight"] == 50
    assert "release_aborted" not in history(admin, "outage")


def test_every_transition_is_in_a_chain_that_verifies(admin: AdminClient, served: Served) -> None:
    admin.call("GET", "/admin/v1/ledger", limit=1)  # flushed to storage
    db = served.log.parent / "ledger.db"
    env = {**os.environ, "GOVERND_STORAGE": f"sqlite:///{db}"}
    args = [sys.executable, "-m", "governd", "audit", "verify", "--json"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["intact"]


def test_an_error_budget_policy_freezes_releases_until_its_page_clears(
    burning: tuple[AdminClient, list[openai.OpenAI]],
) -> None:
    admin, clients = burning
    begin(admin, release("held", [{"set_weight": 50}, {"pause": {"min_events": 10**6}}]))
    until(admin, "held", lambda s: s["step"] == 1, clients)

    def elsewhere(n: int = 10) -> None:
        for client in clients[:n]:
            try:
                client.chat.completions.create(
                    model="other", messages=[{"role": "user", "content": "hi"}], max_tokens=4
                )
            except openai.APIStatusError as exc:
                assert exc.status_code in (502, 503), exc

    admin.call("PUT", "/admin/v1/upstreams/sim-c/faults", {"error_rate": 1.0})
    deadline = time.monotonic() + 60
    while (frozen := admin.call("GET", "/admin/v1/releases/held"))["phase"] != "frozen":
        assert time.monotonic() < deadline, f"not frozen: {frozen['note']}"
        elsewhere()
    assert frozen["weight"] == 50 and "releases frozen by slo:elsewhere" in frozen["note"]
    assert set(traffic(clients)) == {"a", "b"}, "a freeze holds the weight; both arms serve"
    admin.call("PUT", "/admin/v1/upstreams/sim-c/faults", {})
    deadline = time.monotonic() + 60
    while (thawed := admin.call("GET", "/admin/v1/releases/held"))["phase"] != "running":
        assert time.monotonic() < deadline, f"still frozen: {thawed['note']}"
        elsewhere()
    assert thawed["weight"] == 50
    ops = history(admin, "held")
    assert "release_frozen" in ops and "release_resumed" in ops
    assert "release_aborted" not in ops


def test_a_slow_canary_is_rolled_back_on_its_latency(
    admin: AdminClient, clients: list[openai.OpenAI]
) -> None:
    watch = {**ANALYSIS, "latency": {"allowed": 0.5, "critical": 3}}
    steps = [{"set_weight": 50}, {"pause": {"duration": 3600}}]
    begin(admin, release("slow", steps, analysis=watch))
    until(admin, "slow", lambda s: s["weight"] == 50, clients)
    admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"latency_ms": 150})
    aborted = until(admin, "slow", lambda s: s["phase"] == "aborted", clients)
    assert aborted["weight"] == 0 and "latency" in aborted["note"]
    last = admin.call("GET", "/admin/v1/releases/slow/history?limit=1")["history"][0]
    latency = next(e for e in last["signals"]["evidence"] if e["check"] == "latency")
    canary_p95, stable_p95 = latency["p95"]
    assert latency["verdict"] == "failed" and canary_p95 >= 150 > stable_p95
    assert set(traffic(clients)) == {"a"}, "rolled back: every call on stable"
