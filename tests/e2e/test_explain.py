"""``governd explain``: a principal's boundaries from a running server, each with where it comes from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from governd.cli.admin_client import AdminClient, AdminError
from governd.server.launcher import Served, governd_server
from tests.conftest import governd_cli, write_yaml

ADMIN = "adm-explain"
CONFIG = """
principals:
  org: acme
  teams:
    research:
      budgets: [{unit: usd, period: day, limit: 5.0, soft: 0.8}]
      limits: {rpm: 600}
      priority: batch
      projects: {agents: {max_tokens: 200, models: [chat]}}
    support: {models: [chat]}
upstreams: {sim: {kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
models:
  chat: {deployments: [{upstream: sim, model: s}], pricing: {input: 1, output: 2}}
  big: {deployments: [{upstream: sim, model: b}], degrade_to: chat}
policies:
  - {id: research-x, when: 'principal.team == "research" && request.user == "x"', effect: deny}
  - {id: support-all, when: 'principal.team == "support"', effect: deny}
  - {id: blocked, when: 'request.user == "blocked"', effect: deny}
runs: {risk: {levels: [{at: 5, name: guarded, tiers: {write: require_approval}}]}}
slos:
  - name: avail
    objective: 99
    window: 1h
    sli: availability
    alerts: [{severity: page, long: 1m, short: 5s, budget_percent: 2}]
    policies: [{when: page, do: lower_priority, principal: research, to: sheddable}]
    no_data: null
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("explain")
    with governd_server(tmp, write_yaml(tmp / "governd.yaml", CONFIG), ADMIN) as served:
        yield served


def test_operating_cost_risk_and_slos_each_name_their_source(server: Served) -> None:
    admin = AdminClient(server.url, ADMIN)
    key = admin.call("POST", "/admin/v1/keys", {"principal": "research/agents"})["key"]
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])

    out: dict[str, Any] = admin.call("GET", "/admin/v1/explain/research/agents")
    assert out["principal"] == "acme/research/agents"
    op = out["operating"]
    (chat,) = op["models"]
    assert chat["model"] == "chat" and chat["deployments"] == ["sim/s"]
    assert chat["from"] == "principals.teams.research.projects.agents.models"
    assert op["priority"] == {
        "value": "batch",
        "from": "principals.teams.research.priority",
        "now": "batch",
        "lowered_by": None,
    }
    assert op["max_tokens"] == {
        "value": 200,
        "from": "principals.teams.research.projects.agents.max_tokens",
    }
    assert op["rate_limits"] == [
        {
            "node": "acme/research",
            "rpm": 600,
            "tpm": None,
            "concurrency": None,
            "from": "principals.teams.research.limits",
        }
    ]
    (budget,) = out["cost"]["budgets"]
    assert (budget["node"], budget["limit"], budget["from"]) == (
        "acme/research",
        5.0,
        "principals.teams.research.budgets",
    )
    assert budget["spent"] > 0 and budget["left"] < 5.0
    risk = out["risk"]
    assert [(p["id"], p["from"]) for p in risk["policies"]] == [
        ("research-x", "policies.0"),
        ("blocked", "policies.2"),
    ]
    assert risk["policies"][0]["applies"] == "when the rest of `when` holds"
    assert [lv["name"] for lv in risk["risk_levels"]] == ["guarded"]
    (slo,) = out["slos"]
    assert slo["name"] == "avail" and slo["from"] == "slos.0"
    assert slo["policies"] == [
        {"when": "page", "do": "lower_priority", "target": "research", "from": "slos.0.policies.0"}
    ]

    # A runtime budget says so.
    admin.call(
        "PUT",
        "/admin/v1/budgets",
        {"principal": "research/agents", "unit": "tokens", "period": "hour", "limit": 1000},
    )
    budgets = admin.call("GET", "/admin/v1/explain/research/agents")["cost"]["budgets"]
    assert [b["from"] for b in budgets] == [
        "principals.teams.research.budgets",
        "runtime (PUT /admin/v1/budgets)",
    ]


def test_a_key_explains_itself_and_nobody_else(server: Served) -> None:
    admin = AdminClient(server.url, ADMIN)
    key = admin.call("POST", "/admin/v1/keys", {"principal": "support"})["key"]
    own = AdminClient(server.url, key)
    assert own.call("GET", "/admin/v1/explain/self")["principal"] == "acme/support"
    assert own.call("GET", "/admin/v1/explain/support")["principal"] == "acme/support"
    with pytest.raises(AdminError) as refused:
        own.call("GET", "/admin/v1/explain/research")
    assert refused.value.status == 403 and "only its own principal" in str(refused.value)
    with pytest.raises(AdminError) as unknown:
        AdminClient(server.url, "sk-nope").call("GET", "/admin/v1/explain/self")
    assert unknown.value.status == 401


def test_the_cli_prints_each_boundary_with_its_source(server: Served) -> None:
    shown = governd_cli(server.url, ADMIN, "explain", "research/agents")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "priority batch  [principals.teams.research.priority]" in text
    assert "rate limit on acme/research: rpm 600  [principals.teams.research.limits]" in text
    assert "policy blocked: deny (enforce) whenever `when` holds  [policies.2]" in text
    assert "on page: lower_priority research  [slos.0.policies.0]" in text
    missing = governd_cli(server.url, ADMIN, "explain", "nobody")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "nobody" in missing.stderr
