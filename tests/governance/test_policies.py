"""Policies: evaluation (fast path and fail-closed fallback) and decide()'s precedence."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governd.actions import Action, Principal
from governd.config import PolicyConfig
from governd.config.cel_env import sample_context
from governd.governance.decide import decide
from governd.governance.policies import Match, PolicySet, equalities

WHO = Principal("acme", "t", "p")


def pol(id: str, effect: str, when: str = "true", **kw: Any) -> PolicyConfig:
    return PolicyConfig(id=id, when=when, effect=effect, **kw)  # type: ignore[arg-type]


def ctx(**request: Any) -> dict[str, Any]:
    c = sample_context()
    c["request"].update(request)
    return c


def test_only_matching_policies_are_returned_in_order() -> None:
    ps = PolicySet(
        [
            pol("a", "deny", "request.max_tokens > 10"),
            pol("b", "allow", 'request.model == "m"'),
            pol("c", "deny", "request.n > 5"),
        ]
    )
    assert [m.policy.id for m in ps.evaluate(ctx(max_tokens=20))] == ["a", "b"]
    assert ps.evaluate(ctx(max_tokens=5, model="x")) == []


def test_a_runtime_error_fails_closed_for_restrictive_effects_only() -> None:
    ps = PolicySet(
        [
            pol("d", "deny", "request.max_tokens > 10"),
            pol("g", "degrade", "request.max_tokens > 10"),
            pol("ok", "allow", 'principal.org == "acme"'),
        ]
    )
    broken = ctx()
    del broken["request"]["max_tokens"]
    found = {m.policy.id: m.errored for m in ps.evaluate(broken)}
    assert found == {"d": True, "ok": False}


def test_budget_reading_is_detected() -> None:
    assert PolicySet([pol("a", "deny", "budget.used > 0.9")]).all.reads_budget
    assert not PolicySet([pol("a", "deny", "request.n > 1")]).all.reads_budget


def action(model: str = "m") -> Action:
    return Action("r", "chat", WHO, model, {"model": model})


@pytest.mark.parametrize(
    ("matches", "default", "effect", "model", "policy"),
    [
        ([], "allow", "allow", "m", None),
        ([], "deny", "deny", None, "default_deny"),
        ([pol("a", "allow")], "deny", "allow", "m", None),
        ([pol("a", "allow"), pol("d", "deny")], "allow", "deny", None, "d"),
        ([pol("r", "require_approval"), pol("d", "deny")], "allow", "deny", None, "d"),
        (
            [pol("r", "require_approval"), pol("g", "degrade")],
            "allow",
            "require_approval",
            None,
            "r",
        ),
        ([pol("g", "degrade")], "allow", "degrade", "cheap", None),
        ([pol("g", "degrade", degrade_to="m")], "allow", "allow", "m", None),
        ([pol("d", "deny", mode="shadow")], "allow", "allow", "m", None),
    ],
    ids=[
        "default-allow",
        "default-deny",
        "allow-list",
        "deny-wins",
        "deny-over-approval",
        "approval-over-degrade",
        "degrade",
        "degrade-to-itself-is-no-op",
        "shadow-not-enforced",
    ],
)
def test_precedence(
    matches: list[PolicyConfig], default: str, effect: str, model: str | None, policy: str | None
) -> None:
    d = decide(action(), True, [Match.of(p) for p in matches], default, degrade_to="cheap")
    assert d.effect == effect and d.policy == policy
    if model:
        assert d.model == model


def test_shadow_and_set_are_recorded_and_caps_take_the_minimum() -> None:
    d = decide(
        action(),
        True,
        [
            Match.of(pol("s1", "set", set={"max_tokens": 300})),
            Match.of(pol("s2", "set", set={"max_tokens": 100})),
            Match.of(pol("w", "deny", mode="shadow")),
        ],
    )
    assert d.effect == "allow" and d.max_tokens == 100
    assert "shadow:w=deny" in d.reasons and "policy:s1" in d.reasons


def test_model_access_comes_first() -> None:
    d = decide(action("other"), False, [Match.of(pol("a", "allow"))])
    assert d.effect == "deny" and d.policy == "model_access"


def test_errored_match_is_marked_in_the_reason() -> None:
    d = decide(action(), True, [Match.of(pol("d", "deny", message="no"), errored=True)])
    assert d.reasons == ("policy:d: no (errored: failing closed)",)


@pytest.mark.parametrize(
    ("when", "index"),
    [
        ('request.model == "o3"', {"request.model": {"o3"}}),
        ('"o3" == request.model', {"request.model": {"o3"}}),
        (
            'request.model == "o3" && principal.team == "t"',
            {"request.model": {"o3"}, "principal.team": {"t"}},
        ),
        ('(request.model == "o3") && request.n > 1', {"request.model": {"o3"}}),
        ('principal.team in ["a", "b"] && request.stream', {"principal.team": {"a", "b"}}),
        (
            'request.model == "a && b" && tool.tier == "write"',
            {"request.model": {"a && b"}, "tool.tier": {"write"}},
        ),
        ('request.model == "a" && request.model == "b"', {"request.model": set()}),
        # Not plain conjunctions of equalities: indexed by nothing, so always evaluated.
        ('request.model == "a" || principal.team == "b"', {}),
        ('request.model != "a"', {}),
        ('!(request.model == "a" && request.n > 1)', {}),
        ('request.model == "a" ? true : false', {}),
        ('request.model == "a\\"b"', {}),
        ("request.n > 1", {}),
    ],
)
def test_policies_are_indexed_by_the_equalities_they_require(
    when: str, index: dict[str, set[str]]
) -> None:
    assert {f: set(v) for f, v in equalities(when).items()} == index


INDEXED_SET = [
    pol("o3-interns", "deny", 'request.model == "o3" && principal.team == "interns"'),
    pol(
        "mini-cap",
        "set",
        'request.model == "mini" && request.max_tokens > 10',
        set={"max_tokens": 5},
    ),
    pol("teams", "deny", 'principal.team in ["a", "interns"] && request.n > 2'),
    pol("either", "deny", 'request.model == "mini" || principal.team == "a"'),
    pol("any", "deny", "request.n > 3"),
]


def test_a_selection_matches_exactly_what_every_policy_would() -> None:
    """Over every combination of values: the indexed evaluation equals evaluating all policies."""
    ps = PolicySet(INDEXED_SET)
    for model, team, n, max_tokens in itertools.product(
        ["o3", "mini", "other"], ["interns", "a", "z"], [1, 3, 4], [5, 20]
    ):
        context = sample_context()
        context["principal"].update(team=team)
        context["request"].update(model=model, n=n, max_tokens=max_tokens)
        values = {"request.model": model, "principal.team": team}
        chosen = [m.policy.id for m in ps.select(values).evaluate(context)]
        assert chosen == [m.policy.id for m in ps.evaluate(context)], (model, team, n)


def test_a_request_no_policy_can_match_selects_none() -> None:
    ps = PolicySet(INDEXED_SET[:3])
    assert not ps.select({"request.model": "other", "principal.team": "z"})
    assert [
        p.id for p in ps.select({"request.model": "o3", "principal.team": "interns"}).policies
    ] == [
        "o3-interns",
        "teams",
    ]


@pytest.mark.parametrize(
    ("when", "request_fields"),
    [
        ("request.n > 8", {"n": 9}),
        ("request.n > 8", {"n": 8}),
        ("request.n >= 8 && !request.stream", {"n": 8, "stream": False}),
        ("8 < request.n", {"n": 9}),
        ('request.user == ""', {"user": ""}),
        ('request.user != "bob"', {"user": "bob"}),
        ("request.max_tokens > 1.5", {"max_tokens": 2}),
        ("request.stream", {"stream": True}),
        ("request.n == 1", {"n": True}),  # a bool is not a number for CEL
        ("request.n > 1", {"n": "3"}),  # no ordering between a string and a number: CEL errors
        ("request.stream", {"stream": 1}),  # not a bool: CEL errors
        ("request.n == 2", {"n": 2.0}),
    ],
)
def test_plain_conditions_judge_as_cel_does(when: str, request_fields: dict[str, Any]) -> None:
    """The Python path and CEL agree on every value, odd ones included (errors fail closed)."""
    context = ctx(**request_fields)
    policies = [pol("p", "deny", when)]
    fast = PolicySet(policies).all.evaluate(context)
    by_cel = PolicySet(policies).all._by_cel(context)
    assert [(m.policy.id, m.errored) for m in fast] == [(m.policy.id, m.errored) for m in by_cel]


_VALUE = st.one_of(
    st.integers(-3, 3), st.floats(-3, 3, allow_nan=False), st.booleans(), st.sampled_from(["", "a"])
)
_LITERAL = st.sampled_from(["1", "2.5", "true", "false", '"a"', '""'])
_OP = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


@settings(max_examples=300, deadline=None)
@given(
    terms=st.lists(
        st.tuples(st.sampled_from(["n", "user"]), _OP, _LITERAL), min_size=1, max_size=3
    ),
    truth=st.booleans(),
    n=_VALUE,
    user=_VALUE,
    stream=_VALUE,
)
def test_plain_conditions_of_any_kinds_judge_as_cel_does(
    terms: list[tuple[str, str, str]], truth: bool, n: Any, user: Any, stream: Any
) -> None:
    """Compiled Python and CEL agree on conjunctions over values of every kind CEL compares."""
    when = " && ".join(f"request.{f} {op} {lit}" for f, op, lit in terms)
    policies = [
        pol("terms", "deny", when),
        pol("truth", "allow", "request.stream" if truth else "!request.stream"),
        pol("both", "deny", f"request.stream && {when}"),
    ]
    context = ctx(n=n, user=user, stream=stream)
    selection = PolicySet(policies).all
    fast = selection.evaluate(context)
    by_cel = selection._by_cel(context)
    assert [(m.policy.id, m.errored) for m in fast] == [(m.policy.id, m.errored) for m in by_cel]
