"""Cross-references: each name that points nowhere is its own problem, at its own key and line."""

from __future__ import annotations

import pytest

from governd.config import ConfigError, parse_config

COMPUTE = """\
compute:
  flavors: {h100: {}}
  nodes:
    box: {devices: [{flavor: h100, count: 1}, {flavor: b200, count: 2}]}
  default_priority: urgent
  cohorts: {}
  queues:
    q: {cohort: nowhere, quotas: {h100: {nominal: 1}, a100: {nominal: 1}}}
"""
MODELS = """\
upstreams: {s: {kind: sim}}
models:
  a:
    deployments: [{upstream: missing, model: m}]
    fallbacks: [a, ghost]
    degrade_to: a
policies:
  - {id: p, when: 'true', effect: degrade, degrade_to: nope}
  - {id: p, when: 'no_such_variable > 1', effect: deny}
principals:
  models: [a, gone]
  teams: {t: {models: [nope]}}
"""
TOOLS = """\
mcp_servers: {files: {transport: stdio, command: cat}}
principals:
  tools: [files__read, "*", "fi*__list"]
  teams:
    t:
      tools: [mail__send]
      projects: {p: {tools: [files__write, "web__*"]}}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            COMPUTE,
            {
                ("compute.nodes.box.devices.1.flavor", 4, "unknown flavor 'b200'"),
                ("compute.default_priority", 5, "unknown priority class 'urgent'"),
                ("compute.queues.q.cohort", 8, "unknown cohort 'nowhere'"),
                ("compute.queues.q.quotas.a100", 8, "unknown flavor 'a100'"),
            },
            id="compute",
        ),
        pytest.param(
            MODELS,
            {
                ("models.a.deployments.0.upstream", 4, "unknown upstream 'missing'"),
                ("models.a.fallbacks.0", 5, "'a' is not another model alias"),
                ("models.a.fallbacks.1", 5, "'ghost' is not another model alias"),
                ("models.a.degrade_to", 6, "'a' is not another model alias"),
                ("policies.0.degrade_to", 8, "unknown model 'nope'"),
                ("policies.1.id", 9, "duplicate policy id 'p'"),
                ("principals.models.1", 11, "unknown model 'gone'"),
                ("principals.teams.t.models.0", 12, "unknown model 'nope'"),
            },
            id="models-and-policies",
        ),
        pytest.param(
            TOOLS,
            {
                (
                    "principals.teams.t.tools.0",
                    6,
                    "unknown MCP server 'mail' (tools are <server>__<tool>)",
                ),
                (
                    "principals.teams.t.projects.p.tools.1",
                    7,
                    "unknown MCP server 'web' (tools are <server>__<tool>)",
                ),
            },
            id="tools",
        ),
    ],
)
def test_each_bad_reference_is_its_own_problem(
    text: str, expected: set[tuple[str, int, str]]
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    found = {(p.path, p.line, p.message) for p in info.value.problems}
    # The CEL problem's wording is the CEL library's: check its place, not its words.
    cel = {f for f in found if f[0] == "policies.1.when"}
    assert [(path, line) for path, line, _ in cel] == ([("policies.1.when", 9)] if cel else [])
    assert bool(cel) == (text == MODELS)
    assert found - cel == expected


def test_a_reference_problem_is_located_even_beside_field_errors() -> None:
    """A field error elsewhere does not hide, fuse or move the reference problems."""
    text = COMPUTE + "server: {port: 0}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert {(p.path, p.line) for p in info.value.problems} == {
        ("compute.nodes.box.devices.1.flavor", 4),
        ("compute.default_priority", 5),
        ("compute.queues.q.cohort", 8),
        ("compute.queues.q.quotas.a100", 8),
        ("server.port", 9),
    }
