"""``explain``: everything that bounds one principal, each with where it comes from.

Operating boundaries (models and where they run now, tools, rate limits,
priority, output cap, job queues), cost boundaries (every budget on its path:
limit, spent, reserved, forecast), risk boundaries (the policies that may
apply, run limits and risk levels, what needs approval) and the SLOs that
cover it with their status and what their policies do. ``from`` names the
config key a boundary is declared at (``principals.teams.research.budgets.0``)
or the runtime change that made it (``runtime``: the admin API, ``slo:NAME``
or ``budget:...``: a controller).
"""

from __future__ import annotations

from typing import Any

from governd.actions import Principal, within
from governd.config.conditions import equalities
from governd.config.schema import TreeNode
from governd.governance.budgets import BudgetKey, nodes_of
from governd.governance.state.setup import config_budgets
from governd.server.services import Services

_WHO = ("principal.org", "principal.team", "principal.project", "principal.path")


async def explain(s: Services, who: Principal) -> dict[str, Any]:
    """The boundaries of ``who`` as of now."""
    path = _path_nodes(s, who)
    return {
        "principal": who.path,
        "key": who.key_id,
        "operating": _operating(s, who, path),
        "cost": {"budgets": await _costs(s, who)},
        "risk": _risk(s, who),
        "slos": _slos(s, who),
        "overrides": [
            {"key": key, "kind": o.kind, "describe": o.describe(), "from": o.source}
            for key, o in s.overrides.all().items()
            if _touches(o.kind, o.target, who, s)
        ],
    }


async def _costs(s: Services, who: Principal) -> list[dict[str, Any]]:
    """Every budget on the principal's path: limit, soft, spent, reserved, left and forecast."""
    await s.budgets.sync()
    declared = {key for key, _ in config_budgets(s.config)}
    where = {n.path: n for n in s.config.principals.walk()}
    out = []
    for key in s.budgets.on_path(who):
        limit = s.budgets.limit(key)
        if limit is None:
            continue
        spent, reserved = await s.budgets.state.usage(key, s.budgets.window(key)[0])
        out.append(
            {
                "node": key.node,
                "unit": key.unit,
                "period": key.period,
                "limit": limit.limit,
                "soft": limit.soft,
                "spent": spent,
                "overage": await s.budgets.overage(key),
                "reserved": reserved,
                "left": max(0.0, limit.limit - spent - reserved),
                "forecast": _forecast(s, key),
                "from": _budget_source(key, declared, where),
            }
        )
    return out


def _path_nodes(s: Services, who: Principal) -> list[TreeNode]:
    paths = set(nodes_of(who))
    return [n for n in s.config.principals.walk() if n.path in paths]


def _nearest(path: list[TreeNode], field: str) -> tuple[Any, str | None]:
    """The value the nearest node on the path sets for ``field``, and its config key."""
    for node in reversed(path):
        value = getattr(node.config, field)
        if value is not None:
            return value, ".".join((*node.declared_at, field))
    return None, None


def _operating(s: Services, who: Principal, path: list[TreeNode]) -> dict[str, Any]:
    terms = s.admission.terms.of(who)
    _, models_from = _nearest(path, "models")
    priority = terms.priority
    lowered, because = s.overrides.lowered(who.path, priority)
    max_tokens, max_from = _nearest(path, "max_tokens")
    tools, tools_from = _nearest(path, "tools")
    return {
        "models": [
            _model(s, alias, models_from or "models (every model: no node narrows them)")
            for alias in sorted(terms.models)
        ],
        "priority": {
            "value": priority,
            "from": _nearest(path, "priority")[1] or "default (standard)",
            "now": lowered,
            "lowered_by": because,
        },
        "max_tokens": {"value": max_tokens, "from": max_from},
        "rate_limits": [
            {
                "node": lim.path,
                "rpm": lim.rpm,
                "tpm": lim.tpm,
                "concurrency": lim.concurrency,
                "from": _node_key(s, lim.path, "limits"),
            }
            for lim in s.admission.limits.on_path(who)
        ],
        "tools": {"allowed": tools, "from": tools_from or "every tool: no node narrows them"},
        "queues": [
            {
                "queue": name,
                "quotas": {f: q.model_dump() for f, q in queue.quotas.items()},
                "from": f"compute.queues.{name}",
            }
            for name, queue in s.config.compute.queues.items()
            if not queue.principals or any(within(who.path, _full(s, p)) for p in queue.principals)
        ],
    }


def _model(s: Services, alias: str, source: str) -> dict[str, Any]:
    cfg = s.config.models[alias]
    names = [f"{d.upstream}/{d.model}" for d in cfg.deployments]
    degraded = s.overrides.degraded.get(alias)
    return {
        "model": alias,
        "from": source,
        "deployments": names,
        "drained": sorted(set(names) & s.overrides.drained),
        "degrade_to": cfg.degrade_to,
        "degraded_to": degraded[0] if degraded else None,
        "shed": sorted(s.overrides.shed[alias][0]) if alias in s.overrides.shed else [],
    }


def _risk(s: Services, who: Principal) -> dict[str, Any]:
    limits = s.admission.runs.limits_for(who)
    levels = s.config.runs.risk.levels
    return {
        "policies": [p for p in (_policy(i, s, who) for i in range(len(s.config.policies))) if p],
        "run_limits": {**limits.model_dump(), "from": "runs.limits and run_limits on the path"},
        "risk_levels": [
            {
                "at": lv.at,
                "name": lv.name,
                "tiers": lv.tiers,
                "stop": lv.stop,
                "from": f"runs.risk.levels.{i}",
            }
            for i, lv in enumerate(levels)
        ],
        "tightened_tiers": {
            tier: {"effect": effect, "from": source}
            for tier, (effect, source) in s.overrides.tiers.items()
        },
    }


def _policy(i: int, s: Services, who: Principal) -> dict[str, Any] | None:
    """The policy, if it can apply to ``who``: always, or only when the rest of it holds."""
    p = s.config.policies[i]
    need = equalities(p.when, _WHO)
    mine = {
        "principal.org": who.org,
        "principal.team": who.team or "",
        "principal.project": who.project or "",
        "principal.path": who.path,
    }
    if any(mine[field] not in values for field, values in need.items()):
        return None
    return {
        "id": p.id,
        "effect": p.effect,
        "mode": p.mode,
        "when": p.when,
        "applies": "when the rest of `when` holds" if need else "whenever `when` holds",
        "from": f"policies.{i}",
    }


def _slos(s: Services, who: Principal) -> list[dict[str, Any]]:
    if s.slos is None:
        return []
    ev = s.slos.evaluator
    out = []
    for i, name in enumerate(ev.names):
        cfg = ev.config(name)
        need = equalities(cfg.filter, ("entry.principal",)) if cfg.filter else {}
        if "entry.principal" in need and not any(
            within(who.path, p) for p in need["entry.principal"]
        ):
            continue
        groups = [
            {"group": dict(g.group), "remaining": g.remaining, "firing": list(g.firing)}
            for g in ev.status(name)
            if "principal" not in dict(g.group) or within(who.path, dict(g.group)["principal"])
        ]
        out.append(
            {
                "name": name,
                "objective": cfg.objective,
                "window_s": cfg.window,
                "groups": groups,
                "policies": [
                    {
                        "when": p.describe(),
                        "do": p.do,
                        "target": p.target,
                        "from": f"slos.{i}.policies.{j}",
                    }
                    for j, p in enumerate(cfg.policies)
                ],
                "from": f"slos.{i}",
            }
        )
    return out


def _forecast(s: Services, key: BudgetKey) -> dict[str, Any] | None:
    found = s.forecasts.forecasts.get(key) if s.forecasts else None
    if found is None:
        return None
    return {
        "rate_per_hour": found.rate * 3600,
        "exhausts_at": found.exhausts_at,
        "at_period_end": found.at_end,
        "early": key in (s.forecasts.early if s.forecasts else set()),
    }


def _budget_source(key: BudgetKey, declared: set[BudgetKey], where: dict[str, TreeNode]) -> str:
    node = where.get(key.node)
    if key in declared and node is not None:
        return ".".join((*node.declared_at, "budgets"))
    return "runtime (PUT /admin/v1/budgets)"


def _node_key(s: Services, path: str, field: str) -> str | None:
    node = next((n for n in s.config.principals.walk() if n.path == path), None)
    return ".".join((*node.declared_at, field)) if node else None


def _full(s: Services, spec: str) -> str:
    org = s.config.principals.org
    return spec if spec == org or spec.startswith(f"{org}/") else f"{org}/{spec}"


def _touches(kind: str, target: str, who: Principal, s: Services) -> bool:
    """Whether an override in force bears on ``who`` (a node on its path, or a model it may use)."""
    if kind in ("lower_priority", "degrade_node"):
        return within(who.path, target)
    if kind in ("degrade", "shed"):
        return target in s.admission.terms.of(who).models
    if kind == "shift_route":
        models = s.admission.terms.of(who).models
        return any(
            target == f"{d.upstream}/{d.model}"
            for m in models
            for d in s.config.models[m].deployments
        )
    return True
