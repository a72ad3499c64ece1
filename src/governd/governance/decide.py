"""``decide(action) -> Decision``: the pure admission verdict, with its reasons.

Enforcement is separate (the pipeline raises on a ``deny``), so a decision can
be recorded, explained or shadowed without being enforced.
"""

from __future__ import annotations

from governd.actions import ALLOW, Action, Decision


def decide(action: Action, allowed_models: frozenset[str]) -> Decision:
    """Whether the action's principal may call its model."""
    if action.model not in allowed_models:
        return Decision(
            "deny",
            (f"policy:model_access: {action.principal.path} may not use model {action.model!r}",),
        )
    return ALLOW
