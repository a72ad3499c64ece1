"""``decide(...) -> Decision``: the pure admission verdict, with its reasons.

Enforcement is separate (the pipeline raises on ``deny``), so a decision can be
recorded, explained or shadowed without being enforced. Precedence among
enforced policies: ``deny`` > ``require_approval`` > ``degrade`` > ``allow``;
``set`` caps apply to whatever is served. Shadow policies only add reasons
(``shadow:<id>=<effect>``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from governd.actions import Action, Decision
from governd.governance.policies import Match


def decide(
    action: Action,
    permitted: bool,
    matches: Sequence[Match] = (),
    default_effect: str = "allow",
    degrade_to: str | None = None,
) -> Decision:
    """The verdict for ``action`` given whether its principal may use its model or tool, and policies."""
    if not permitted:
        what = "tool" if action.kind == "tool_call" else "model"
        return Decision(
            "deny",
            (f"policy:{what}_access: {action.principal.path} may not use {what} {action.model!r}",),
            policy=f"{what}_access",
        )
    if not matches:  # the usual call: no policy holds
        if default_effect == "deny":
            return Decision("deny", ("policy:default_deny",), policy="default_deny")
        return _allowed(action.model)
    enforced = [m for m in matches if m.policy.mode == "enforce"]
    reasons = [
        f"shadow:{m.policy.id}={m.policy.effect}" for m in matches if m.policy.mode == "shadow"
    ]
    by_effect: dict[str, list[Match]] = {}
    for m in enforced:
        by_effect.setdefault(m.policy.effect, []).append(m)
    for effect in ("deny", "require_approval"):
        if effect in by_effect:
            first = by_effect[effect][0].policy
            why = [m.reason for m in by_effect[effect]]
            return Decision(effect, (*why, *reasons), policy=first.id)
    if default_effect == "deny" and "allow" not in by_effect:
        return Decision("deny", ("policy:default_deny", *reasons), policy="default_deny")
    caps = [
        v for m in by_effect.get("set", ()) for k, v in m.policy.set.items() if k == "max_tokens"
    ]
    reasons += [m.reason for e in ("allow", "set") for m in by_effect.get(e, ())]
    max_tokens = min(caps) if caps else None
    for m in by_effect.get("degrade", ()):
        target = m.policy.degrade_to or degrade_to
        if target and target != action.model:
            return Decision("degrade", (m.reason, *reasons), target, max_tokens)
        reasons.append(f"policy:{m.policy.id}: no degrade_to for {action.model!r}, served as asked")
    return Decision("allow", tuple(reasons), action.model, max_tokens)


@functools.lru_cache(maxsize=1024)
def _allowed(model: str) -> Decision:
    """A plain allow of ``model`` (immutable: one per model serves every call)."""
    return Decision("allow", (), model)
