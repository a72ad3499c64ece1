"""``governd policy test``: run declared cases (input -> expected effect) against policies.

A case file names a config whose policies and principal tree to test
(``config:``, relative to the case file) and lists cases. Each case gives the
principal (``TEAM[/PROJECT]``), any context fields it cares about (the rest
take their defaults, see ``governd.cel_env.sample_context``) and the expected
effect, optionally the served model and the policies that must appear in the
decision's reasons.

A case runs the code serving runs: the policies, ``decide``, then the budget
``ladder``, with every budget the config declares on the principal's path as
full as the case's ``budget.used`` says (so a case past a soft line is
degraded as a request would be).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governd.actions import Action, Decision, Principal
from governd.clock import SystemClock
from governd.config import ConfigError, ConfigProblem, load_config
from governd.config.cel_env import sample_context
from governd.governance.budgets import BudgetKey, BudgetUse, Limit, nodes_of
from governd.governance.decide import decide
from governd.governance.ladder import ladder
from governd.governance.policies import PolicySet
from governd.governance.principals import PrincipalTree
from governd.governance.ratelimits import LocalLimits, RateLimits
from governd.governance.state.setup import config_budgets
from governd.governance.terms import TermsBook


class Case(BaseModel):
    """One declared case."""

    model_config = ConfigDict(extra="forbid")

    name: str
    principal: str = ""
    request: dict[str, Any] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    run: dict[str, Any] = Field(default_factory=dict)
    time: dict[str, Any] = Field(default_factory=dict)
    expect: Literal["allow", "deny", "degrade", "require_approval"]
    expect_model: str | None = None
    expect_policies: list[str] = Field(default_factory=list)


class CaseFile(BaseModel):
    """The file ``governd policy test`` reads."""

    model_config = ConfigDict(extra="forbid")

    config: str
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class Outcome:
    """A case's result."""

    case: Case
    decision: Decision
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether the decision matched every expectation."""
        return not self.problems


def load_cases(path: Path) -> tuple[CaseFile, Path]:
    """The case file and the config it names; ``ConfigError`` when either is invalid."""
    try:
        raw = yaml.safe_load(path.read_text())
        cases = CaseFile.model_validate(raw)
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("", None, exc.strerror or str(exc))]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [ConfigProblem("", None, f"not valid YAML: {exc}")]) from None
    except ValidationError as exc:
        problems = [
            ConfigProblem(".".join(str(p) for p in err["loc"]), None, err["msg"])
            for err in exc.errors()
        ]
        raise ConfigError(str(path), problems) from None
    return cases, (path.parent / cases.config).resolve()


def run_cases(path: Path) -> list[Outcome]:
    """Evaluate every case of ``path``."""
    cases, config_path = load_cases(path)
    cfg = load_config(config_path)
    tree = PrincipalTree(cfg)
    policies = PolicySet(cfg.policies)
    budgets = config_budgets(cfg)
    out = []
    for case in cases.cases:
        principal = tree.resolve(case.principal or cfg.principals.org)
        ctx = sample_context()
        ctx["principal"].update(
            org=principal.org,
            team=principal.team or "",
            project=principal.project or "",
            path=principal.path,
        )
        for section in ("request", "budget", "run", "time"):
            ctx[section].update(getattr(case, section))
        model = str(ctx["request"]["model"])
        action = Action("case", "chat", principal, model, {"model": model})
        alias = cfg.models.get(model)
        degrade_to = alias.degrade_to if alias else None
        decision = decide(
            action,
            model in tree.models_for(principal),
            policies.evaluate(ctx),
            cfg.governance.default_effect,
            degrade_to,
        )
        if decision.effect not in ("deny", "require_approval"):
            terms = TermsBook(tree, RateLimits(cfg, LocalLimits(SystemClock()))).of(principal)
            uses = _uses(budgets, principal, float(ctx["budget"]["used"]))
            decision, _ = ladder(
                decision, model, terms.priority, None, uses, terms.ladders, degrade_to
            )
        out.append(Outcome(case, decision, tuple(_mismatches(case, decision))))
    return out


def _uses(
    budgets: list[tuple[BudgetKey, Limit]], principal: Principal, used: float
) -> list[BudgetUse]:
    """Every budget declared on the principal's path, ``used`` full."""
    path = set(nodes_of(principal))
    return [
        BudgetUse.of(key, limit, used * limit.limit, 0.0)
        for key, limit in budgets
        if key.node in path
    ]


def _mismatches(case: Case, decision: Decision) -> list[str]:
    out = []
    if decision.effect != case.expect:
        out.append(f"expected {case.expect}, got {decision.effect}")
    if case.expect_model and decision.model != case.expect_model:
        out.append(f"expected model {case.expect_model}, got {decision.model}")
    said = " ".join(decision.reasons)
    out += [
        f"policy {p} not in the reasons" for p in case.expect_policies if f"policy:{p}" not in said
    ]
    return out
