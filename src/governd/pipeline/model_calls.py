"""Model calls through the pipeline: admit -> route -> reply -> settle -> record.

``ModelCalls.begin`` admits a call and routes it; the ``ModelCall`` it
returns (built once both are done) is an async context manager whose exit
settles it (usage, cost), appends its ledger entry and gives back what
admission held, so a stream settles when it ends, however it ends. A call
refused or failed before that is settled on the spot, then raised. Intent
surfaces only translate protocols into ``Action``s and back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from governd import tokens
from governd.actions import Action, Decision, Usage
from governd.clock import Clock
from governd.errors import ClientDisconnected, GovernError, UpstreamError
from governd.execution import Routed, Router
from governd.execution.assemble import assemble
from governd.execution.rejections import upstream_rejection
from governd.execution.router import Arm
from governd.execution.usage import OutputCounter, StreamMeter, reply_usage
from governd.governance.admission import Admission, Admitted, refusal
from governd.governance.releases import Assignment, Releases
from governd.ledger import cost_usd
from governd.ledger.releases.counts import signals_of
from governd.observe.alerts import AlertSender
from governd.pipeline.entries import Timing, model_entry, model_signals
from governd.pipeline.overbilling import CODE, INCIDENT, Overbilled, overbilled
from governd.pipeline.recorder import Recorder

log = logging.getLogger("governd.pipeline")


class ModelCalls:
    """Admits, routes, settles and records model calls."""

    def __init__(
        self,
        admission: Admission,
        router: Router,
        recorder: Recorder,
        clock: Clock,
        releases: Releases | None = None,
        alerts: AlertSender | None = None,
    ) -> None:
        self.admission = admission
        self._router = router
        self._recorder = recorder
        self.clock = clock
        self._releases = releases
        self._alerts = alerts

    async def begin(self, action: Action) -> ModelCall:
        """Decide and route ``action``; a refusal or upstream failure is recorded, then raised."""
        started = self.clock.monotonic()
        try:
            self._recorder.check_recordable()
            admitted = await self.admission.admit(action)
        except GovernError as exc:
            await self.settle(Settlement(action, started, refusal(exc, None), error=exc))
            raise
        # A metered call is streamed from the upstream even when the client wants it whole.
        streamed = action.stream or admitted.metered is not None
        arm = await self._arm(action, admitted.served)
        body = upstream_body(action, admitted.max_tokens, streamed)
        if arm is not None and arm.target.system_prompt is not None and action.operation == "chat":
            body = with_system_prompt(body, arm.target.system_prompt)
        route = None if arm is None else Arm(arm.target.deployment, arm.avoid)
        try:
            routed = await self._router.send(
                admitted.served, action.operation, body, streamed, admitted.priority, route
            )
        except BaseException as exc:
            error = failure(exc, action)
            await self.settle(
                Settlement(action, started, admitted.decision, admitted, error=error, arm=arm)
            )
            if isinstance(exc, GovernError):
                raise exc.refusing(refusal(exc, admitted.decision)) from None
            raise
        call = ModelCall(self, action, admitted, routed, started, arm)
        try:
            call.take_reply()
            if streamed and not action.stream:
                await call.collect()
        except GovernError as exc:
            await call.finish(exc)
            raise exc.refusing(refusal(exc, admitted.decision)) from None
        return call

    async def _arm(self, action: Action, served: str) -> Assignment | None:
        """The arm of a release that serves the call, if a release of ``served`` is in force."""
        if self._releases is None or not self._releases.active:
            return None
        return await self._releases.assign(served, action.principal, action.run_id)

    async def reject(self, action: Action, error: GovernError, started: float) -> None:
        """Record a request refused before it was admitted (bad key, bad input)."""
        await self.settle(Settlement(action, started, None, error=error))

    async def settle(self, done: Settlement) -> None:
        """Release the upstream, price the call, record its entry, give back what it held."""
        action, routed, usage = done.action, done.routed, done.usage or Usage()
        if routed is not None:
            await routed.release()
        cost = cost_usd(usage, routed.target.pricing) if routed is not None else 0.0
        arm = done.arm
        part = {} if arm is None else signals_of(arm.release, arm.epoch, arm.arm)
        breach = None
        if routed is not None and done.admitted is not None:
            served = routed.target
            cap = done.admitted.max_tokens
            breach = overbilled(action, cap, served.name, served.pricing, usage)
        if breach is not None:
            part = {**part, **breach.signals()}
        signals, points = model_signals(done.error, self.admission.runs.weights, part or None)
        timing = Timing(
            self.clock.now(), (self.clock.monotonic() - done.started) * 1000, done.ttft_ms
        )
        note = CODE if breach is not None and done.error is None else done.note
        entry = model_entry(
            action, done.decision, done.error, routed, usage, cost, timing, signals, note
        )
        target = routed.target if routed is not None else None
        span = (target.upstream.kind, target.spec.model) if target else (None, None)
        await self._recorder.record(entry, action, points, span)
        if done.admitted is not None:
            await self.admission.release(done.admitted, cost, usage)
        if breach is not None and self._router.trip(breach.deployment, breach.summary()):
            await self._tripped(breach, action)

    async def _tripped(self, breach: Overbilled, action: Action) -> None:
        """Say a deployment was tripped: the log, its own ledger entry, an incident alert."""
        log.warning("tripped %s: %s", breach.deployment, breach.summary())
        detail = f"tripped: {breach.summary()} (call {action.id}); clear it once it is fixed"
        await self._recorder.record_control(action.principal.path, "upstream_tripped", detail)
        if self._alerts is not None:
            where = {"deployment": breach.deployment}
            await self._alerts.incident(INCIDENT, where, breach.summary(), self.clock.now())


@dataclass(slots=True)
class Settlement:
    """Everything a call's settlement needs, once it is over."""

    action: Action
    started: float
    decision: Decision | None
    admitted: Admitted | None = None
    routed: Routed | None = None
    usage: Usage | None = None
    error: GovernError | None = None
    ttft_ms: float | None = None
    note: str | None = None
    #: The release arm that served it.
    arm: Assignment | None = None


class ModelCall:
    """One admitted and routed model call; ``async with`` it so that it is settled and recorded."""

    def __init__(
        self,
        calls: ModelCalls,
        action: Action,
        admitted: Admitted,
        routed: Routed,
        started: float,
        arm: Assignment | None = None,
    ) -> None:
        self._calls = calls
        self.arm = arm
        self.action = action
        self.admitted = admitted
        self.decision = admitted.decision
        self.routed = routed
        self.started = started
        # What the reply tells as it arrives.
        self.usage: Usage | None = None
        self.error: GovernError | None = None
        self.body = b""
        self.ttft_ms: float | None = None
        self.cost = 0.0
        #: Recorded as the entry's error_code of a call that did not fail (``cut_by_budget``).
        self.note: str | None = None
        self._finished = False

    def take_reply(self) -> None:
        """Check the upstream's status; for a whole reply, read its usage and price it."""
        reply = self.routed.reply
        if reply.status >= 400:
            target = self.routed.target
            raise upstream_rejection(reply.status, reply.body, target.name, target.upstream.secrets)
        if reply.chunks is None:
            self.body = reply.body
            self.ttft_ms = (self._calls.clock.monotonic() - self.started) * 1000
            self.usage = reply_usage(reply.body, self.routed.target.name, self._prompt_tokens)
            self.cost = cost_usd(self.usage, self.routed.target.pricing)

    def _prompt_tokens(self) -> int:
        body = self.action.body
        if self.action.operation == "chat":
            return tokens.count_messages(body.get("messages") or [], body.get("tools"))
        prompt = body.get("prompt", body.get("input", ""))
        return tokens.count(prompt if isinstance(prompt, str) else orjson.dumps(prompt).decode())

    async def stream(self) -> AsyncIterator[bytes]:
        """The upstream's SSE events as they come; a mid-stream failure ends with an error event.

        The last event is held back until the call is settled, so a client
        that saw the end of the stream can already find its ledger entry. A
        metered stream (its hold sized from recorded outputs) is counted as it
        flows and its hold raised in steps to cover what arrives; what a budget
        has no room for is withheld and the reply ends there (``finish_reason:
        length``), so a reply never costs more than its hold.
        """
        assert self.routed.reply.chunks is not None
        meter = StreamMeter(self.action.include_usage, self._prompt_tokens)
        counter = OutputCounter() if self.admitted.metered is not None else None
        clock = self._calls.clock
        held = b""
        cut = False
        try:
            async for chunk in self.routed.reply.chunks:
                out = meter.feed(chunk)
                if out and self.ttft_ms is None:
                    self.ttft_ms = (clock.monotonic() - self.started) * 1000
                if counter is not None and out and not meter.done:
                    forward, cut = await self._covered(counter, out)
                    out = out if forward else b""
                if meter.done:
                    held += out
                elif out:
                    yield out
                if cut:
                    break
            if not cut:
                held += meter.tail()
                if not meter.done:
                    raise UpstreamError(
                        f"upstream {self.routed.target.name} ended the stream early"
                    )
        except GovernError as exc:
            self.error = exc
            held += b"data: " + orjson.dumps(exc.envelope()) + b"\n\n"
        finally:
            self.usage = meter.result()
        if cut and counter is not None:
            self.usage = Usage(
                self.usage.input_tokens, self.usage.cached_tokens, counter.tokens, "counted"
            )
            held += counter.ending(
                self._choices(), self.usage if self.action.include_usage else None
            )
            self.decision = _cut(self.decision, counter.tokens)
            self.note = "cut_by_budget"
        await self.finish(None)
        if held:
            yield held

    async def collect(self) -> None:
        """Read a metered stream the client wants whole, and build that reply (settled on the way)."""
        events = b"".join([chunk async for chunk in self.stream()])
        if self.error is not None:
            raise self.error
        usage = self.usage or Usage()
        self.body = assemble(events, usage, self.action.operation == "chat")
        self.cost = cost_usd(usage, self.routed.target.pricing)

    async def _covered(self, counter: OutputCounter, out: bytes) -> tuple[bool, bool]:
        """Count ``out``; forward it if the hold covers it (raised if need be), else cut here."""
        metered = self.admitted.metered
        assert metered is not None
        before = counter.tokens
        produced = counter.add(out)
        if produced <= metered.held or await self._calls.admission.top_up(self.admitted, produced):
            return True, False
        counter.tokens = before  # withheld: not forwarded, not charged
        return False, True

    def _choices(self) -> int:
        n = self.action.body.get("n")
        return n if isinstance(n, int) and n > 0 else 1

    async def __aenter__(self) -> ModelCall:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.finish(exc)

    async def finish(self, exc: BaseException | None) -> None:
        """Settle and record the call (once; later calls do nothing)."""
        if self._finished:
            return
        self._finished = True
        if isinstance(exc, GovernError) or (exc is not None and self.error is None):
            error: GovernError | None = failure(exc, self.action)
        else:
            error = self.error
        await self._calls.settle(
            Settlement(
                self.action,
                self.started,
                self.decision,
                self.admitted,
                self.routed,
                self.usage,
                error,
                self.ttft_ms,
                self.note,
                self.arm,
            )
        )


def _cut(decision: Decision, output_tokens: int) -> Decision:
    """The verdict of a stream cut by its budget: as admitted, with why it ended early."""
    why = f"cut_by_budget: reply ended at {output_tokens} output tokens, no budget room for more"
    return dataclasses.replace(decision, reasons=(*decision.reasons, why))


def failure(exc: BaseException, action: Action) -> GovernError:
    """What a call that ended with ``exc`` is recorded as."""
    if isinstance(exc, GovernError):
        return exc
    if not isinstance(exc, Exception):  # cancelled: the client went away
        return ClientDisconnected("client closed the connection")
    log.error("internal error in %s", action.id, exc_info=exc)
    return GovernError("internal error")


def upstream_body(action: Action, max_tokens: int | None, stream: bool) -> dict[str, Any]:
    """What the upstream is sent: the client's body, with governd's output limit and usage ask.

    ``stream``: streamed from the upstream (the client's ask, or a metered call's).
    """
    body = action.body
    if max_tokens is not None:
        body = dict(body)
        if "max_completion_tokens" in body:
            body["max_completion_tokens"] = max_tokens
        if "max_tokens" in body or "max_completion_tokens" not in body:
            body["max_tokens"] = max_tokens
    if not stream or action.operation == "embedding":
        return body
    if not action.stream:
        body = {**body, "stream": True}
    opts = body.get("stream_options")
    merged = dict(opts) if isinstance(opts, dict) else {}
    merged["include_usage"] = True
    return {**body, "stream_options": merged}


def with_system_prompt(body: dict[str, Any], prompt: str) -> dict[str, Any]:
    """A chat body whose system prompt is ``prompt`` (replacing the first, or put first)."""
    messages = list(body.get("messages") or [])
    first = next(
        (
            i
            for i, m in enumerate(messages)
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        ),
        None,
    )
    if first is None:
        messages.insert(0, {"role": "system", "content": prompt})
    else:
        messages[first] = {**messages[first], "content": prompt}
    return {**body, "messages": messages}
