"""The shared vocabulary of the pipeline: principals, actions, decisions, usage, priorities, risk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Effect = Literal["allow", "deny", "degrade", "queue", "require_approval"]
Operation = Literal["chat", "completion", "embedding", "tool", "job"]

#: Priority classes, most important first.
Priority = Literal["critical", "standard", "batch", "sheddable"]
PRIORITIES: tuple[Priority, ...] = ("critical", "standard", "batch", "sheddable")

#: How much harm a tool call can do, least first.
RiskTier = Literal["read", "write", "external", "destructive"]
RISK_TIERS: tuple[RiskTier, ...] = ("read", "write", "external", "destructive")

#: What a tool call may have done to the world: nothing, changed state governd's users own,
#: reached outside (mail, posts, payments), or something that cannot be undone.
SideEffect = Literal["none", "mutation", "external", "irreversible"]
SIDE_EFFECT_OF_TIER: dict[str, SideEffect] = {
    "read": "none",
    "write": "mutation",
    "external": "external",
    "destructive": "irreversible",
}

#: What raises a run's risk score.
RiskEvent = Literal[
    "denied", "approval_denied", "destructive", "quarantined", "injection", "run_limit", "invalid"
]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts: a node of the org > team > project tree, and the key used, if any."""

    org: str
    team: str | None = None
    project: str | None = None
    key_id: str | None = None
    # Principals key the caches every call reads (terms, budget paths, output sizes): hash once.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.org, self.team, self.project, self.key_id)))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def from_path(cls, path: str) -> Principal:
        """The node at ``org[/team[/project]]`` (as ledger entries name it)."""
        parts = path.split("/")
        team, project = [*parts[1:3], None, None][:2]
        return cls(parts[0], team, project)

    @property
    def path(self) -> str:
        """``org/team/project`` down to the deepest node set (the key is not part of it)."""
        return "/".join(p for p in (self.org, self.team, self.project) if p)

    def contains(self, path: str) -> bool:
        """Whether the node at ``path`` is this principal's node or below it (its subtree)."""
        return within(path, self.path)

    @property
    def scope(self) -> tuple[str, ...]:
        """The (team, project) part of the path, as far as it is set."""
        return tuple(p for p in (self.team, self.project) if p)


def within(path: str, node: str) -> bool:
    """Whether ``path`` is ``node`` or below it: ``acme/t`` holds ``acme/t/p``, not ``acme/tx``."""
    return path == node or path.startswith(node + "/")


@dataclass(frozen=True, slots=True)
class Decision:
    """The admission verdict for an action, with the reasons that produced it.

    ``model`` is the alias to serve (another one when degraded), ``max_tokens``
    a cap a policy set, ``policy`` the policy that decided a refusal.
    """

    effect: Effect
    reasons: tuple[str, ...] = ()
    model: str | None = None
    max_tokens: int | None = None
    policy: str | None = None


ALLOW = Decision("allow")


@dataclass(slots=True)
class Usage:
    """What an action consumed; ``source`` says whether the upstream reported it."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    source: Literal["upstream", "counted", "none"] = "none"


@dataclass(slots=True)
class Action:
    """One governed model call, as the intent plane parsed it."""

    id: str
    operation: Operation
    principal: Principal
    model: str
    body: dict[str, Any]
    stream: bool = False
    run_id: str | None = None
    kind: Literal["model_call", "tool_call", "job"] = "model_call"
    include_usage: bool = False
    priority: Priority | None = None
