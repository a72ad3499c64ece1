"""SLOs end to end: a sim deployment told to fail pages within the short window, then recovers.

A real ``governd serve``, a real Alertmanager, the openai SDK as the client.
The SLO: 99% availability per deployment over 1h, one page pair of 1m/5s at
2% of the budget (factor 0.02 * 3600/60 = 1.2): with every call to the
failing deployment bad, both windows burn at 100 from its first failures.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, governd_server
from governd.testing.alertmanager import alertmanager
from tests.conftest import governd_cli, write_yaml

ADMIN = "adm-slo-e2e"
SLO = "chat-availability"
CONFIG = """
principals: {{org: acme, teams: {{ops: {{}}}}}}
upstreams:
  sim-a: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
  sim-b: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
models:
  chat:
    deployments: [{{upstream: sim-a, model: a}}, {{upstream: sim-b, model: b}}]
router: {{retries: 0, breaker_failures: 1000000}}
ledger: {{flush_ms: 5}}
observe:
  alerts: {{alertmanagers: ["{alertmanager}"], resend_s: 2}}
slos:
  - name: {slo}
    objective: 99
    window: 1h
    sli: availability
    group_by: [deployment]
    alerts: [{{severity: page, long: 1m, short: 5s, budget_percent: 2}}]
    policies: [{{when: page, do: shift_route, hold: 2s}}]
    no_data: null
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Served]]:
    tmp = tmp_path_factory.mktemp("slos")
    with alertmanager(tmp / "am") as am:
        cfg = write_yaml(tmp / "governd.yaml", CONFIG.format(alertmanager=am.url, slo=SLO))
        with governd_server(tmp, cfg, ADMIN) as server:
            yield server, am


def traffic(client: openai.OpenAI, n: int) -> None:
    for _ in range(n):
        try:
            client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "x"}]
            )
        except openai.APIStatusError as exc:
            assert exc.status_code == 502  # governd: the upstream answered 503


def until(client: openai.OpenAI, found: Callable[[], Any], timeout: float = 30) -> Any:
    """Keep traffic flowing until ``found()`` returns something (the alerts need calls to judge)."""
    deadline = time.monotonic() + timeout
    while not (result := found()):
        assert time.monotonic() < deadline, "not reached"
        traffic(client, 5)
    return result


def group(admin: AdminClient, deployment: str) -> dict[str, Any]:
    (slo,) = admin.call("GET", "/admin/v1/slos")["slos"]
    return next((g for g in slo["groups"] if g["group"]["deployment"] == deployment), {})


def am_alerts(am: Served) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{am.url}/api/v2/alerts") as reply:
        found: list[dict[str, Any]] = json.load(reply)
    return [a for a in found if a["labels"].get("slo") == SLO]


def scrape(server: Served) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    req = urllib.request.Request(
        server.url + "/metrics", headers={"authorization": f"Bearer {ADMIN}"}
    )
    with urllib.request.urlopen(req) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_failing_deployment_pages_alertmanager_and_resolves_after_recovery(
    served: tuple[Served, Served],
) -> None:
    server, am = served
    admin = AdminClient(server.url, ADMIN)
    key = admin.call("POST", "/admin/v1/keys", {"principal": "ops"})["key"]
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
    traffic(client, 20)
    healthy = until(client, lambda: group(admin, "sim-b/b").get("windows"))
    assert group(admin, "sim-b/b")["firing"] == [] and healthy[0]["bad"] == 0

    told = admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"error_rate": 1.0})
    assert told == {"error_rate": 1.0, "latency_ms": 0.0, "status": 503}
    failing_since = time.time()
    until(client, lambda: group(admin, "sim-b/b")["firing"] == ["page"])
    assert group(admin, "sim-a/a")["firing"] == []

    # Judged firing, then recorded (once across replicas): the entry follows within a tick.
    (fired,) = until(client, lambda: admin.call("GET", f"/admin/v1/slos/{SLO}")["transitions"])
    assert fired["state"] == "fired" and fired["group"] == {"deployment": "sim-b/b"}
    # Within the short window's resolution of the first failures (plus a tick).
    assert fired["at"] - failing_since <= 5 + 1
    five_seconds = next(w for w in fired["windows"] if w["window_s"] == 5)
    assert five_seconds["bad"] > 0 and five_seconds["burn"] > 1.2

    samples = scrape(server)
    labels = {"slo": SLO, "deployment": "sim-b/b", "severity": "page"}
    firing = [
        v
        for (n, ls), v in samples.items()
        if n == "governd_slo_alert_firing" and set(labels.items()) <= ls
    ]
    assert firing == [1.0]

    def sample(name: str, **want: str) -> float:
        found = [v for (n, ls), v in samples.items() if n == name and set(want.items()) <= ls]
        assert len(found) == 1, (name, want, found)
        return found[0]

    b = {"slo": SLO, "deployment": "sim-b/b"}
    assert sample("governd_slo_events_total", **b, outcome="bad") > 0
    assert sample("governd_slo_burn_rate", **b, window="5s") > 1.2
    assert sample("governd_slo_error_budget_remaining_ratio", **b) < 1
    assert sample("governd_slo_objective_ratio", slo=SLO) == 0.99
    listed = governd_cli(server.url, ADMIN, "slos", "list")
    assert listed.returncode == 0, listed.stderr
    assert "deployment=sim-b/b" in listed.stdout and "FIRING page" in listed.stdout

    (paged,) = until(client, lambda: am_alerts(am))
    assert paged["labels"]["severity"] == "page" and paged["labels"]["deployment"] == "sim-b/b"
    assert paged["status"]["state"] == "active"

    # The policy drained the burning deployment: new calls go to sim-a only.
    shown = admin.call("GET", f"/admin/v1/slos/{SLO}")
    (action,) = shown["actions"]
    assert (action["action"], action["target"], action["state"]) == (
        "shift_route",
        "sim-b/b",
        "taken",
    )
    assert action["firing"] == ["page"] and action["rule"] == "page"
    assert [f["describe"] for f in shown["in_force"]] == ["no new calls to deployment sim-b/b"]
    shown_text = governd_cli(server.url, ADMIN, "slos", "show", SLO)
    assert shown_text.returncode == 0, shown_text.stderr
    assert "IN FORCE  no new calls to deployment sim-b/b" in shown_text.stdout
    assert "shift_route  taken (sim-b/b)" in shown_text.stdout
    traffic(client, 10)
    recent = admin.call("GET", "/admin/v1/ledger", principal="ops", order="desc", limit=10)
    assert {e["deployment"] for e in recent["entries"]} == {"sim-a/a"}

    admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"error_rate": 0})
    until(client, lambda: group(admin, "sim-b/b")["firing"] == [])
    until(client, lambda: not am_alerts(am))  # resolved: Alertmanager lists it no more

    def actions() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = admin.call("GET", f"/admin/v1/slos/{SLO}")["actions"]
        return found

    # Undone once the page has cleared and the action held its 2 s: sim-b serves again.
    until(client, lambda: len(actions()) == 2)
    assert [a["state"] for a in actions()] == ["undone", "taken"]
    until(client, lambda: next(w["good"] for w in group(admin, "sim-b/b")["windows"]) > 0)
    assert admin.call("GET", f"/admin/v1/slos/{SLO}")["in_force"] == []

    def history() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = admin.call("GET", f"/admin/v1/slos/{SLO}")["transitions"]
        return found

    until(client, lambda: len(history()) == 2)
    assert [t["state"] for t in history()] == ["resolved", "fired"]
    assert "Traceback" not in server.output()
