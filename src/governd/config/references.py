"""Cross-references of a config: names that must point at something defined elsewhere in it.

Each check yields its own problem at the path of the offending key (relative
to the model it checks), so the loader can name its line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from governd.config import cel_env
from governd.config.slo_policies import SloPolicy

if TYPE_CHECKING:
    from governd.config.compute import ComputeConfig
    from governd.config.releases import ReleaseConfig
    from governd.config.schema import GovernConfig

#: (path below the model checked, what is wrong there)
Found = list[tuple[tuple[str, ...], str]]

_GLOB = frozenset("*?[")


def config_references(cfg: GovernConfig) -> Found:
    """Every name in ``cfg`` that points nowhere: models, policies, allow-lists, tools."""
    out = [*_models(cfg), *_policies(cfg), *_allow_lists(cfg), *_slos(cfg)]
    out += _duplicates("releases", "name", [r.name for r in cfg.releases], "release name")
    for i, release in enumerate(cfg.releases):
        out += [(("releases", str(i), *at), why) for at, why in release_references(cfg, release)]
    return out


def release_references(cfg: GovernConfig, release: ReleaseConfig) -> Found:
    """What a release names exists: its model, its targets' upstreams, its SLO, its safeguards.

    Config releases are checked at load, releases created at runtime when created.
    """
    out: Found = []
    alias = cfg.models.get(release.model)
    if alias is None:
        return [(("model",), f"unknown model {release.model!r}")]
    for arm in ("canary", "stable"):
        deployment = getattr(release, arm).deployment
        upstream = deployment.partition("/")[0] if deployment else None
        if upstream is not None and upstream not in cfg.upstreams:
            out.append(((arm, "deployment"), f"unknown upstream {upstream!r} (upstream/model)"))
    canary = release.canary.deployment
    own = [f"{d.upstream}/{d.model}" for d in alias.deployments]
    if release.stable.deployment is None and canary is not None and not set(own) - {canary}:
        why = f"the canary is {release.model!r}'s only deployment: name a `stable.deployment`"
        out.append((("canary", "deployment"), why))
    slos = {slo.name: slo for slo in cfg.slos}
    slo = release.analysis.slo
    if slo is not None and slos.get(slo) is None:
        out.append((("analysis", "slo"), f"unknown slo {slo!r}"))
    elif slo is not None and slos[slo].kind != "model_call":
        out.append((("analysis", "slo"), f"slo {slo!r} counts {slos[slo].kind}s, not model calls"))
    enforced = {p.id for p in cfg.policies if p.mode == "enforce"}
    for i, name in enumerate(release.gates.safeguards):
        if name not in enforced:
            why = f"safeguard {name!r} is not an enforced policy"
            out.append((("gates", "safeguards", str(i)), why))
    return out


def _models(cfg: GovernConfig) -> Found:
    out: Found = []
    for alias, model in cfg.models.items():
        at = ("models", alias)
        for i, dep in enumerate(model.deployments):
            if dep.upstream not in cfg.upstreams:
                where = (*at, "deployments", str(i), "upstream")
                out.append((where, f"unknown upstream {dep.upstream!r}"))
        for i, fb in enumerate(model.fallbacks):
            if fb == alias or fb not in cfg.models:
                out.append(((*at, "fallbacks", str(i)), f"{fb!r} is not another model alias"))
        to = model.degrade_to
        if to is not None and (to == alias or to not in cfg.models):
            out.append(((*at, "degrade_to"), f"{to!r} is not another model alias"))
    return out


def _duplicates(section: str, field: str, names: list[str], what: str) -> Found:
    """Each name of a list that an earlier item already has, at its own key."""
    return [
        ((section, str(i), field), f"duplicate {what} {name!r}")
        for i, name in enumerate(names)
        if names.index(name) != i
    ]


def _policies(cfg: GovernConfig) -> Found:
    out = _duplicates("policies", "id", [p.id for p in cfg.policies], "policy id")
    for i, pol in enumerate(cfg.policies):
        at = ("policies", str(i))
        why = cel_env.problem(pol.when)
        if why is not None:
            out.append(((*at, "when"), f"policy {pol.id!r}: {why.replace('; ', ', ')}"))
        if pol.degrade_to is not None and pol.degrade_to not in cfg.models:
            out.append(((*at, "degrade_to"), f"unknown model {pol.degrade_to!r}"))
    return out


def _slos(cfg: GovernConfig) -> Found:
    """SLO names are unique; their expressions compile and read only what entries have."""
    out = _duplicates("slos", "name", [slo.name for slo in cfg.slos], "slo name")
    for i, slo in enumerate(cfg.slos):
        at = ("slos", str(i))
        for field in ("filter", "bad", "good"):
            expr = getattr(slo, field)
            why = None if expr is None else cel_env.entry_problem(expr)
            if why is not None:
                out.append(((*at, field), f"slo {slo.name!r}: {why.replace('; ', ', ')}"))
        for j, policy in enumerate(slo.policies):
            where = (*at, "policies", str(j))
            out.extend(((*where, f), why) for f, why in _policy_targets(cfg, policy))
    return out


def _policy_targets(cfg: GovernConfig, policy: SloPolicy) -> list[tuple[str, str]]:
    """The models, deployments and principals an SLO policy names exist."""
    deployments = {f"{d.upstream}/{d.model}" for m in cfg.models.values() for d in m.deployments}
    principals = {node.path.partition("/")[2] for node in cfg.principals.walk()}
    wrong = []
    if policy.deployment is not None and policy.deployment not in deployments:
        wrong.append(("deployment", f"unknown deployment {policy.deployment!r} (upstream/model)"))
    if policy.model is not None and policy.model not in cfg.models:
        wrong.append(("model", f"unknown model {policy.model!r}"))
    if policy.do == "degrade" and policy.to not in cfg.models:
        wrong.append(("to", f"unknown model {policy.to!r}"))
    if policy.principal is not None and policy.principal not in principals - {""}:
        wrong.append(("principal", f"unknown principal {policy.principal!r} (TEAM[/PROJECT])"))
    return wrong


def _allow_lists(cfg: GovernConfig) -> Found:
    """Models a node allows must exist; tools it allows must name a configured MCP server."""
    out: Found = []
    for node in cfg.principals.walk():
        for i, name in enumerate(node.config.models or []):
            if name not in cfg.models:
                out.append(((*node.declared_at, "models", str(i)), f"unknown model {name!r}"))
        for i, pattern in enumerate(node.config.tools or []):
            server, namespaced, _ = pattern.partition("__")
            if namespaced and not _GLOB & set(server) and server not in cfg.mcp_servers:
                where = (*node.declared_at, "tools", str(i))
                out.append((where, f"unknown MCP server {server!r} (tools are <server>__<tool>)"))
    return out


def compute_references(compute: ComputeConfig) -> Found:
    """Flavors, cohorts and priority classes that devices, queues and defaults name."""
    out: Found = []
    for node, cfg in compute.nodes.items():
        for i, group in enumerate(cfg.devices):
            if group.flavor not in compute.flavors:
                where = ("nodes", node, "devices", str(i), "flavor")
                out.append((where, f"unknown flavor {group.flavor!r}"))
    if compute.default_priority not in compute.priority_classes:
        unknown = f"unknown priority class {compute.default_priority!r}"
        out.append((("default_priority",), unknown))
    offered = set(compute.flavors) | {
        g.unit_flavor for node in compute.nodes.values() for g in node.devices
    }
    for name, queue in compute.queues.items():
        if queue.cohort is not None and queue.cohort not in compute.cohorts:
            out.append((("queues", name, "cohort"), f"unknown cohort {queue.cohort!r}"))
        out += [
            (("queues", name, "quotas", flavor), f"unknown flavor {flavor!r}")
            for flavor in queue.quotas
            if flavor not in offered
        ]
    return out
