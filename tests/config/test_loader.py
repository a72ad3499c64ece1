"""Config: load, interpolate, validate, report every problem with path and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from governd.cli import main
from governd.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_exercises_every_section() -> None:
    cfg = load_config(ROOT / "examples" / "governd.yaml")
    dumped = cfg.model_dump()
    assert set(dumped) == {
        "server",
        "admin_key",
        "storage",
        "principals",
        "upstreams",
        "models",
        "router",
        "ledger",
        "governance",
        "policies",
        "state",
        "observe",
        "mcp_servers",
        "mcp",
        "runs",
        "compute",
        "slos",
        "releases",
    }
    assert [r.name for r in cfg.releases] == ["mini-v2"]
    assert {s.sli for s in cfg.slos} == {"availability", "ttft", None}
    assert cfg.compute.queues["evals"].quotas["a10g/share"].nominal == 8
    assert {u.kind for u in cfg.upstreams.values()} == {"sim", "openai"}
    assert {m.strategy for m in cfg.models.values()} == {"weighted", "least_in_flight"}
    assert any(m.fallbacks for m in cfg.models.values())
    teams = cfg.principals.teams
    assert (
        cfg.principals.budgets
        and teams["research"].budgets
        and teams["research"].projects["evals"].budgets
    )
    assert {b.unit for b in teams["research"].budgets} == {"usd", "tokens"}
    assert {p.effect for p in cfg.policies} == {"degrade", "set", "deny", "require_approval"}
    assert {p.mode for p in cfg.policies} == {"enforce", "shadow"}
    assert cfg.storage == f"sqlite:///{ROOT / 'examples' / 'governd.db'}"


def test_embedded_defaults_and_peers_config_load() -> None:
    assert "gpt-4o-mini" in load_config(None).models
    assert (
        load_config(ROOT / "bench" / "peers.yaml").models["gpt-4o-mini"].deployments[0].upstream
        == "mock"
    )


def test_every_problem_is_reported_with_path_and_line() -> None:
    text = "server:\n  port: 0\nupstreams:\n  s: {kind: sim, decode_tps: -1}\n  o: {kind: openai}\nbogus: 1\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    found = {(p.path, p.line) for p in info.value.problems}
    assert found == {
        ("server.port", 2),
        ("upstreams.s.decode_tps", 4),
        ("upstreams.o.base_url", 5),
        ("bogus", 6),
    }


def test_upstream_headers_cannot_smuggle_lines_into_a_request() -> None:
    text = (
        "upstreams:\n"
        "  o:\n"
        "    kind: openai\n"
        "    base_url: http://127.0.0.1:9/v1\n"
        '    headers: {"x-ok": fine, "x-evil": "a\\r\\nhost: elsewhere", "bad name": v}\n'
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert {p.path for p in info.value.problems} == {
        "upstreams.o.headers.x-evil",
        "upstreams.o.headers.bad name.[key]",
    }


def test_cross_references_are_checked() -> None:
    text = (
        "upstreams: {s: {kind: sim}}\n"
        "models:\n"
        "  a:\n"
        "    deployments: [{upstream: missing, model: m}]\n"
        "    fallbacks: [a, ghost]\n"
        "principals: {teams: {t: {models: [nope]}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    paths = {p.path: p.line for p in info.value.problems}
    assert paths == {
        "models.a.deployments.0.upstream": 4,
        "models.a.fallbacks.0": 5,
        "models.a.fallbacks.1": 5,
        "principals.teams.t.models.0": 6,
    }


def test_env_interpolation_with_default_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UP_URL", "http://127.0.0.1:9/v1")
    cfg = parse_config(
        "upstreams:\n  o: {kind: openai, base_url: '${UP_URL}', api_key: '${NOPE_KEY:-fallback}'}\n"
    )
    up = cfg.upstreams["o"]
    assert up.kind == "openai" and up.base_url == "http://127.0.0.1:9/v1"
    assert up.api_key is not None and up.api_key.get_secret_value() == "fallback"
    with pytest.raises(ConfigError) as info:
        parse_config("admin_key: ${GOVERND_TEST_UNSET_VAR}\n")
    assert info.value.problems[0].path == "admin_key" and info.value.problems[0].line == 1
    assert "GOVERND_TEST_UNSET_VAR" in info.value.problems[0].message


def test_environment_overrides_storage_and_admin_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOVERND_STORAGE", "other.db")
    monkeypatch.setenv("GOVERND_ADMIN_KEY", "from-env")
    (tmp_path / "g.yaml").write_text("storage: file.db\nadmin_key: from-file\n")
    cfg = load_config(tmp_path / "g.yaml")
    assert cfg.storage == f"sqlite:///{tmp_path / 'other.db'}"
    assert cfg.admin_key is not None and cfg.admin_key.get_secret_value() == "from-env"


def test_config_is_frozen() -> None:
    cfg = load_config(None)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        cfg.server.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: [1, 2\n", 2), ("- just a list\n", 1), ("a: b: c\n", 1)],
)
def test_invalid_yaml_is_a_config_error(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.problems[0].line == line


def test_config_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["config", "check", str(ROOT / "examples" / "governd.yaml")])
    assert ok.exit_code == 0 and "ok" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: nope\n")
    res = runner.invoke(main, ["config", "check", str(bad)])
    assert res.exit_code == 1 and "line 2: server.port" in res.output
    missing = runner.invoke(main, ["config", "check", str(tmp_path / "absent.yaml")])
    assert missing.exit_code == 1 and "absent.yaml" in missing.output


POLICY_BASE = "upstreams: {s: {kind: sim}}\nmodels: {m: {deployments: [{upstream: s, model: x}]}}\npolicies:\n"


@pytest.mark.parametrize(
    ("policy", "path", "fragment"),
    [
        ("  - {id: a, when: 'request.n >', effect: deny}\n", "policies.0.when", "at 1:"),
        ("  - {id: a, when: 'request.modle == 1', effect: deny}\n", "policies.0.when", "modle"),
        ("  - {id: a, when: 'job.gpu > 4', effect: deny}\n", "policies.0.when", "gpu"),
        ("  - {id: a, when: 'request.model', effect: deny}\n", "policies.0.when", "boolean"),
        ("  - {id: a, when: 'true', effect: set}\n", "policies.0", "needs `set`"),
        (
            "  - {id: a, when: 'true', effect: degrade, degrade_to: nope}\n",
            "policies.0.degrade_to",
            "nope",
        ),
        (
            "  - {id: a, when: 'true', effect: deny}\n  - {id: a, when: 'true', effect: allow}\n",
            "policies.1.id",
            "duplicate",
        ),
        ("  - {id: a, when: 'true', effect: explode}\n", "policies.0.effect", "allow"),
    ],
    ids=[
        "syntax",
        "unknown-field",
        "unknown-job-field",
        "not-bool",
        "set-without-values",
        "unknown-degrade-target",
        "duplicate-id",
        "unknown-effect",
    ],
)
def test_bad_policies_are_named_with_their_line(policy: str, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(POLICY_BASE + policy)
    problem = info.value.problems[0]
    assert problem.path == path and fragment in problem.message
    assert problem.line is not None and problem.line >= 4


def test_policy_test_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["policy", "test", str(ROOT / "examples" / "policy-tests.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "7 passed, 0 failed" in ok.output
    (tmp_path / "governd.yaml").write_text((ROOT / "examples" / "governd.yaml").read_text())
    (tmp_path / "cases.yaml").write_text(
        "config: governd.yaml\ncases:\n"
        "  - {name: wrong, principal: research, request: {model: gpt-4o}, time: {hour: 23}, expect: allow}\n"
    )
    bad = runner.invoke(main, ["policy", "test", str(tmp_path / "cases.yaml")])
    assert bad.exit_code == 1 and "expected allow, got degrade" in bad.output
    (tmp_path / "broken.yaml").write_text("config: governd.yaml\ncases: []\n")
    broken = runner.invoke(main, ["policy", "test", str(tmp_path / "broken.yaml")])
    assert broken.exit_code == 1 and "cases" in broken.output


def test_policies_may_read_tool_arguments() -> None:
    parse_config(
        POLICY_BASE + "  - {id: a, when: 'args.to.endsWith(\"@rival.example\")', effect: deny}\n"
    )
