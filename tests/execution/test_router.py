"""The router: strategies, retries before the first byte, fallbacks, breakers."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from governd.clock import ManualClock
from governd.config import parse_config
from governd.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from governd.execution import Router
from governd.execution.openai_client import ConnectFailed
from governd.execution.upstream import UpstreamReply


class Scripted:
    """An upstream that answers from a script: an int status, or an exception to raise."""

    def __init__(self, name: str, script: list[int | Exception] | None = None) -> None:
        self.name = name
        self.script = list(script or [])
        self.calls: list[dict[str, Any]] = []

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def post(self, path: str, body: dict[str, Any], stream: bool) -> UpstreamReply:
        self.calls.append(body)
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, Exception):
            raise step
        return UpstreamReply(step, b"{}")


def make(yaml: str, **ups: Scripted) -> tuple[Router, ManualClock]:
    names = "".join(f"  {n}: {{kind: sim}}\n" for n in ups)
    cfg = parse_config("upstreams:\n" + names + yaml)
    clock = ManualClock()
    return Router(cfg, ups, clock, random.Random(1)), clock  # type: ignore[arg-type]


async def test_weighted_spreads_by_weight() -> None:
    a, b = Scripted("a"), Scripted("b")
    router, _ = make(
        "models:\n  m: {deployments: [{upstream: a, model: x, weight: 3}, {upstream: b, model: y, weight: 1}]}\n",
        a=a,
        b=b,
    )
    for _ in range(2000):
        routed = await router.send("m", "chat", {"model": "m"}, False)
        await routed.release()
    assert 2.6 < len(a.calls) / len(b.calls) < 3.4
    assert a.calls[0]["model"] == "x" and b.calls[0]["model"] == "y"


async def test_least_in_flight_prefers_the_idle_deployment() -> None:
    a, b = Scripted("a"), Scripted("b")
    router, _ = make(
        "models:\n  m: {strategy: least_in_flight, deployments: [{upstream: a, model: x}, {upstream: b, model: x}]}\n",
        a=a,
        b=b,
    )
    held = [await router.send("m", "chat", {}, False) for _ in range(4)]
    assert Counter(r.target.spec.upstream for r in held) == {"a": 2, "b": 2}
    await held[0].release()
    idle = held[0].target.spec.upstream
    nxt = await router.send("m", "chat", {}, False)
    assert nxt.target.spec.upstream == idle


async def test_retries_5xx_and_connect_errors_on_other_deployments() -> None:
    a, b = Scripted("a", [503]), Scripted("b", [ConnectFailed("refused")])
    router, _ = make(
        "router: {retries: 2}\nmodels:\n  m: {deployments: [{upstream: a, model: x}, {upstream: b, model: x}]}\n",
        a=a,
        b=b,
    )
    routed = await router.send("m", "chat", {}, False)
    assert routed.attempts == 3 and routed.reply.status == 200
    assert len(a.calls) + len(b.calls) == 3


async def test_timeouts_are_not_retried() -> None:
    a = Scripted("a", [UpstreamTimeout("slow")])
    router, _ = make("models:\n  m: {deployments: [{upstream: a, model: x}]}\n", a=a)
    with pytest.raises(UpstreamTimeout):
        await router.send("m", "chat", {}, False)
    assert len(a.calls) == 1


async def test_fallbacks_in_order_after_retries() -> None:
    a, b, c = Scripted("a", [500] * 3), Scripted("b", [500] * 3), Scripted("c")
    router, _ = make(
        "router: {retries: 2}\nmodels:\n"
        "  m: {deployments: [{upstream: a, model: x}], fallbacks: [n, o]}\n"
        "  n: {deployments: [{upstream: b, model: x}]}\n"
        "  o: {deployments: [{upstream: c, model: x}]}\n",
        a=a,
        b=b,
        c=c,
    )
    routed = await router.send("m", "chat", {}, False)
    assert routed.target.alias == "o" and routed.attempts == 7
    assert (len(a.calls), len(b.calls), len(c.calls)) == (3, 3, 1)


async def test_exhausted_retries_raise_the_last_error() -> None:
    a = Scripted("a", [500] * 5)
    router, _ = make(
        "router: {retries: 1}\nmodels:\n  m: {deployments: [{upstream: a, model: x}]}\n", a=a
    )
    with pytest.raises(UpstreamError) as failed:
        await router.send("m", "chat", {}, False)
    assert len(a.calls) == 2
    # The ledger names where it failed, and after how many tries.
    assert (failed.value.deployment, failed.value.attempts) == ("a/x", 2)


async def test_open_breaker_refuses_without_calling_then_probes() -> None:
    a = Scripted("a", [500, 500])
    router, clock = make(
        "router: {retries: 0, breaker_failures: 2, breaker_cooldown_s: 30}\n"
        "models:\n  m: {deployments: [{upstream: a, model: x}]}\n",
        a=a,
    )
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await router.send("m", "chat", {}, False)
    with pytest.raises(UpstreamUnavailable):
        await router.send("m", "chat", {}, False)
    assert len(a.calls) == 2
    clock.advance(30)
    routed = await router.send("m", "chat", {}, False)
    assert routed.reply.status == 200 and len(a.calls) == 3


async def test_a_drained_deployment_gets_calls_only_when_nothing_else_can_take_them() -> None:
    a, b, c = Scripted("a"), Scripted("b"), Scripted("c")
    names = "  a: {kind: sim}\n  b: {kind: sim}\n  c: {kind: sim}\n"
    cfg = parse_config(
        "upstreams:\n" + names + "models:\n"
        "  m: {deployments: [{upstream: a, model: x}, {upstream: b, model: x}], fallbacks: [n]}\n"
        "  n: {deployments: [{upstream: c, model: x}]}\n"
    )
    drained: set[str] = {"b/x"}
    router = Router(cfg, {"a": a, "b": b, "c": c}, ManualClock(), random.Random(1), drained)  # type: ignore[arg-type]
    for _ in range(50):
        await (await router.send("m", "chat", {}, False)).release()
    assert (len(a.calls), len(b.calls)) == (50, 0)
    drained.add("a/x")  # the alias's own deployments are all drained: its fallback serves
    assert (await router.send("m", "chat", {}, False)).target.name == "c/x"
    drained.add("c/x")  # everything is drained: better a drained deployment than none
    assert (await router.send("m", "chat", {}, False)).target.name in ("a/x", "b/x")
