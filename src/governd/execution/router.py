"""Routes a model call to a deployment of its alias, with retries, fallbacks and breakers.

Retries happen only before the first byte reaches the client: on a refused
connection or a 5xx status. A timeout is not retried (the upstream may have
done the work). When an alias's deployments are exhausted, its ``fallbacks``
are tried in order.
"""

from __future__ import annotations

import random
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

from governd.clock import Clock
from governd.config import Deployment, GovernConfig, ModelAlias, OpenAIUpstream, Pricing
from governd.errors import GovernError, UpstreamError, UpstreamUnavailable
from governd.execution.breaker import CircuitBreaker
from governd.execution.capacity import CapacityGate
from governd.execution.openai_client import ConnectFailed, OpenAIClient
from governd.execution.sim import SimEngine
from governd.execution.upstream import PATHS, Upstream, UpstreamReply


@dataclass(eq=False)
class Target:
    """One deployment of one alias, with its live state."""

    alias: str
    spec: Deployment
    upstream: Upstream
    breaker: CircuitBreaker
    pricing: Pricing
    in_flight: int = 0

    @property
    def name(self) -> str:
        """``upstream/model``: how the ledger and metrics name a deployment."""
        return f"{self.spec.upstream}/{self.spec.model}"


@dataclass(slots=True)
class Routed:
    """A call that reached a deployment: its reply, where it went, attempts, time queued."""

    reply: UpstreamReply
    target: Target
    attempts: int
    queued_s: float = 0.0
    gate: CapacityGate | None = None
    admitted_at: float = 0.0
    clock: Clock | None = None
    _done: bool = False

    async def release(self) -> None:
        """Close the reply, free its capacity slot, stop counting it in flight (idempotent)."""
        if not self._done:
            self._done = True
            self.target.in_flight -= 1
            if self.gate is not None and self.clock is not None:
                self.gate.release(self.clock.monotonic() - self.admitted_at)
            await self.reply.aclose()


def build_upstreams(cfg: GovernConfig) -> dict[str, Upstream]:
    """One client per configured upstream."""
    out: dict[str, Upstream] = {}
    for name, spec in cfg.upstreams.items():
        out[name] = (
            OpenAIClient(name, spec) if isinstance(spec, OpenAIUpstream) else SimEngine(name, spec)
        )
    return out


class Router:
    """Chooses deployments per alias (``weighted`` or ``least_in_flight``) and sends calls."""

    def __init__(
        self,
        cfg: GovernConfig,
        upstreams: Mapping[str, Upstream],
        clock: Clock,
        rng: random.Random | None = None,
        drained: Container[str] = frozenset(),
    ) -> None:
        self._aliases: dict[str, ModelAlias] = dict(cfg.models)
        #: Deployments that get new calls only when nothing else in the chain can take them
        #: (a live set: controllers drain a deployment that burns its error budget).
        self._drained = drained
        self._retries = cfg.router.retries
        self._rng = rng or random.Random()
        self._clock = clock
        self._upstreams = upstreams
        self._breaker = (cfg.router.breaker_failures, cfg.router.breaker_cooldown_s)
        #: Deployments releases name that their alias does not list, made when first sent to.
        self._extra: dict[tuple[str, str], Target] = {}
        #: Deployments out of rotation until an operator clears them, and why (a breach of
        #: contract: billing past the bound a call was given). This replica's, like breakers.
        self.tripped: dict[str, str] = {}
        self.gates: dict[str, CapacityGate] = {
            alias: CapacityGate(
                alias,
                sum(d.max_in_flight or 0 for d in m.deployments),
                cfg.router.shed_after_s,
                clock,
            )
            for alias, m in cfg.models.items()
            if all(d.max_in_flight for d in m.deployments)
        }
        self._targets: dict[str, list[Target]] = {
            alias: [self._target(alias, dep) for dep in model.deployments]
            for alias, model in cfg.models.items()
        }

    def _target(self, alias: str, dep: Deployment) -> Target:
        pricing = dep.pricing or self._aliases[alias].pricing
        breaker = CircuitBreaker(*self._breaker, self._clock)
        return Target(alias, dep, self._upstreams[dep.upstream], breaker, pricing)

    def trip(self, deployment: str, why: str) -> bool:
        """Take ``deployment`` out of rotation until cleared; False if it already was."""
        if deployment in self.tripped:
            return False
        self.tripped[deployment] = why
        return True

    def clear(self, deployment: str) -> str | None:
        """Put a tripped deployment back in rotation; why it was tripped (None: it was not)."""
        return self.tripped.pop(deployment, None)

    def deployments(self) -> list[str]:
        """Every deployment some alias routes to (``upstream/model``)."""
        return sorted({t.name for targets in self._targets.values() for t in targets})

    def targets(self, alias: str) -> list[Target]:
        """The deployments of an alias."""
        return self._targets[alias]

    async def send(
        self,
        alias: str,
        operation: str,
        body: dict[str, Any],
        stream: bool,
        priority: str = "standard",
        arm: Arm | None = None,
    ) -> Routed:
        """Send to the first deployment that answers without a 5xx; raise the last failure.

        When the alias has a capacity, the call first waits for a slot by priority.
        ``arm``: the deployment a release's arm must (``only``) or must not (``avoid``) use.
        """
        gate = self.gates.get(alias)
        queued = await gate.acquire(priority) if gate is not None else 0.0
        admitted_at = self._clock.monotonic()
        try:
            routed = await self._send(alias, operation, body, stream, arm)
        except BaseException:
            if gate is not None:
                gate.release(self._clock.monotonic() - admitted_at)
            raise
        routed.queued_s, routed.gate, routed.admitted_at = queued, gate, admitted_at
        routed.clock = self._clock
        return routed

    async def _send(
        self, alias: str, operation: str, body: dict[str, Any], stream: bool, arm: Arm | None
    ) -> Routed:
        last: GovernError | None = None
        last_target: Target | None = None
        attempts = 0
        chain = [alias, *self._aliases[alias].fallbacks]
        drained = self._drained
        if drained and not any(self._pick(n, set(), drained, probe=True) for n in chain):
            drained = ()  # every deployment left is drained: better drained than nothing
        for name in chain:
            tried: set[int] = set()
            for _ in range(self._retries + 1):
                target = self._pick(name, tried, drained, arm=arm if name == alias else None)
                if target is None:
                    break
                tried.add(id(target))
                attempts += 1
                routed, last = await self._attempt(target, operation, body, stream, attempts)
                if routed is not None:
                    return routed
                last_target = target
        if last is None or last_target is None:
            raise UpstreamUnavailable(
                f"no deployment of model {alias!r} is available (circuit open)"
            )
        raise last.failed_at(last_target.name, attempts)

    async def _attempt(
        self, target: Target, operation: str, body: dict[str, Any], stream: bool, attempts: int
    ) -> tuple[Routed | None, GovernError | None]:
        payload = dict(body)
        payload["model"] = target.spec.model
        target.in_flight += 1
        try:
            reply = await target.upstream.post(PATHS[operation], payload, stream)
        except ConnectFailed as exc:
            target.in_flight -= 1
            target.breaker.failure()
            return None, exc
        except GovernError:
            target.in_flight -= 1
            target.breaker.failure()
            raise
        if reply.status >= 500:
            target.in_flight -= 1
            target.breaker.failure()
            await reply.aclose()
            return None, UpstreamError(f"upstream {target.name} answered {reply.status}")
        target.breaker.success()
        return Routed(reply, target, attempts), None

    def _pick(
        self,
        alias: str,
        tried: set[int],
        drained: Container[str] = (),
        probe: bool = False,
        arm: Arm | None = None,
    ) -> Target | None:
        usable = [
            t
            for t in self._arm(alias, arm)
            if t.breaker.available() and t.name not in drained and t.name not in self.tripped
        ]
        if probe:
            return usable[0] if usable else None
        candidates = [t for t in usable if id(t) not in tried] or usable
        with_room = [
            t
            for t in candidates
            if t.spec.max_in_flight is None or t.in_flight < t.spec.max_in_flight
        ]
        candidates = with_room or candidates
        if not candidates:
            return None
        if self._aliases[alias].strategy == "least_in_flight":
            low = min(t.in_flight for t in candidates)
            candidates = [t for t in candidates if t.in_flight == low]
        if len(candidates) == 1:
            chosen = candidates[0]
        else:
            chosen = self._rng.choices(candidates, weights=[t.spec.weight for t in candidates])[0]
        chosen.breaker.begin()
        return chosen

    def _arm(self, alias: str, arm: Arm | None) -> list[Target]:
        """The deployments of ``alias`` an arm of its release may use."""
        targets = self._targets[alias]
        if arm is None:
            return targets
        if arm.only is not None:
            found = self._extra.get((alias, arm.only))
            if found is None:
                found = next((t for t in targets if t.name == arm.only), None)
                if found is None:
                    upstream, _, model = arm.only.partition("/")
                    spec = Deployment.model_validate({"upstream": upstream, "model": model})
                    found = self._target(alias, spec)
                self._extra[alias, arm.only] = found
            return [found]
        return [t for t in targets if t.name != arm.avoid]


@dataclass(frozen=True, slots=True)
class Arm:
    """Where a release's arm may send a call: only one deployment, or any but one."""

    only: str | None = None
    avoid: str | None = None
