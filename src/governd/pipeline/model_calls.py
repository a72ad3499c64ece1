"""The one path every action takes: decide -> reserve -> execute -> settle -> record.

``Pipeline.begin`` admits a model call and routes it; the ``ModelCall`` it
returns is an async context manager whose exit settles the call (usage, cost)
and appends its ledger entry, so a stream settles when it ends, however it
ends. Intent surfaces only translate protocols into ``Action``s and back.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from types import TracebackType

import mcp_types as types
import orjson

from governd import tokens
from governd.actions import Action, Decision, Usage
from governd.clock import Clock
from governd.controllers.run_risk import RunRisk
from governd.errors import (
    ApprovalDenied,
    ApprovalRequired,
    ClientDisconnected,
    GovernError,
    InvalidRequest,
    UpstreamError,
    UpstreamUnavailable,
)
from governd.execution import Routed, Router
from governd.execution.mcp_upstream import McpUnavailable, McpUpstream
from governd.execution.usage import StreamMeter, usage_of_body
from governd.governance.admission import Admission, Admitted
from governd.governance.approvals import Approvals
from governd.ledger import LedgerEntry, LedgerWriter, cost_usd
from governd.ledger.writer import control_entry
from governd.observe.metrics import Metrics
from governd.observe.traces import Tracing
from governd.pipeline.entries import ToolTarget, model_signals, tool_outcome

log = logging.getLogger("governd.pipeline.model_calls")


class Pipeline:
    """Admits, routes, settles and records model calls."""

    def __init__(
        self,
        admission: Admission,
        router: Router,
        writer: LedgerWriter,
        clock: Clock,
        metrics: Metrics,
        approvals: Approvals,
        tracing: Tracing | None = None,
    ) -> None:
        self.admission = admission
        self._router = router
        self._writer = writer
        self.clock = clock
        self._metrics = metrics
        self._tracing = tracing
        self.approvals = approvals
        self.risk = RunRisk(admission.runs, self.record_control)

    def close(self) -> None:
        """Export pending spans (blocking: run it off the event loop)."""
        if self._tracing is not None:
            self._tracing.shutdown()

    async def begin(self, action: Action) -> ModelCall:
        """Decide and route ``action``; a refusal or upstream failure is recorded, then raised."""
        call = ModelCall(self, action)
        try:
            call.admitted = await self.admission.admit(action)
            call.decision = call.admitted.decision
            call.routed = await self._router.send(
                call.admitted.served,
                action.operation,
                self._upstream_body(action),
                action.stream,
                call.admitted.priority,
            )
            call.take_reply()
        except BaseException as exc:
            if isinstance(exc, GovernError):
                if exc.decision is None:
                    exc.decision = call.decision or Decision("deny", (exc.code,))
                call.decision = exc.decision
            await call.finish(exc)
            raise
        return call

    def _upstream_body(self, action: Action) -> dict[str, object]:
        if not action.stream or action.operation == "embedding":
            return action.body
        opts = action.body.get("stream_options")
        merged = dict(opts) if isinstance(opts, dict) else {}
        merged["include_usage"] = True
        return {**action.body, "stream_options": merged}

    async def reject(
        self, action: Action, error: GovernError, started: float | None = None
    ) -> None:
        """Record a request refused before it was admitted (bad key, bad input)."""
        call = ModelCall(self, action)
        if started is not None:
            call.started = started
        call.error = error
        durable = self.settle(call)
        if durable is not None:
            await durable
        await self.risk.observe(action, call.risk_points)

    async def record_control(
        self, principal: str, operation: str, detail: str, run_id: str | None = None
    ) -> str:
        """Record a change an operator or controller made to live state; returns the entry id."""
        entry = control_entry(operation, detail, principal, self.clock.now(), run_id)
        durable = self._writer.append(entry)
        if durable is not None:
            await durable
        return entry.id

    async def call_tool(
        self, action: Action, upstream: McpUpstream, target: ToolTarget
    ) -> types.CallToolResult:
        """Admit, execute and record one tool call; a refusal or failure is recorded, then raised."""
        started = self.clock.monotonic()
        decision: Decision | None = None
        error: GovernError | None = None
        result: types.CallToolResult | None = None
        try:
            decision = await self._admit_tool(action, target.server, target.tier or "destructive")
            await self.admission.hold_run(action)
            result = await upstream.call_tool(target.tool, action.body)
            return result
        except GovernError as exc:
            error = exc
            raise
        except McpUnavailable as exc:
            error = UpstreamUnavailable(str(exc))
            raise error from None
        finally:
            if error is not None and error.decision is not None:
                decision = error.decision
            await self._record_tool(action, target, decision, error, result, started)

    async def refuse_tool(self, action: Action, target: ToolTarget, error: GovernError) -> None:
        """Record a tool call refused before admission (unknown, quarantined, bad arguments)."""
        await self._record_tool(action, target, None, error, None, self.clock.monotonic())

    async def _record_tool(
        self,
        action: Action,
        target: ToolTarget,
        decision: Decision | None,
        error: GovernError | None,
        result: types.CallToolResult | None,
        started: float,
    ) -> None:
        entry, points = tool_outcome(
            action, target, decision, error, result, self.admission.runs.weights
        )
        entry.latency_ms = (self.clock.monotonic() - started) * 1000
        entry.ts = self.clock.now()
        self._metrics.observe(entry)
        if self._tracing is not None:
            self._tracing.record_tool(entry)
        durable = self._writer.append(entry)
        if durable is not None:
            await durable
        await self.risk.observe(action, points)

    async def _admit_tool(self, action: Action, server: str, tier: str) -> Decision:
        """Admission, waiting for a human when a policy requires approval."""
        try:
            return await self.admission.admit_tool(action, server, tier)
        except ApprovalRequired as held:
            policy = held.policy
            asked = held.decision or Decision("require_approval", (), policy=policy)
        verdict = await self.approvals.hold(action, tier, policy)
        reasons = (*asked.reasons, f"approval {verdict.id}")
        if verdict.status == "approved":
            return Decision("allow", (*reasons, f"approved by {verdict.by}"))
        if verdict.status == "denied":
            refused: GovernError = ApprovalDenied(
                f"denied by {verdict.by} (approval {verdict.id}, asked by policy {policy})",
                policy=policy,
            )
            refused.decision = Decision(
                "deny", (*reasons, f"denied by {verdict.by}"), policy=policy
            )
        else:
            refused = ApprovalRequired(
                f"approval {verdict.id} was not given in time (policy {policy})",
                policy=policy,
            )
            refused.decision = Decision("deny", (*reasons, "approval timed out"), policy=policy)
        raise refused

    def settle(self, call: ModelCall) -> Awaitable[None] | None:
        """Price the call and append its entry; in strict durability, what to await before replying."""
        action, routed, error, decision = call.action, call.routed, call.error, call.decision
        usage = call.usage or Usage()
        if routed is not None:
            call.cost = cost_usd(usage, routed.target.pricing)
        signals, call.risk_points = model_signals(error, self.admission.runs.weights)
        entry = LedgerEntry(
            id=action.id,
            ts=self.clock.now(),
            kind=action.kind,
            operation=action.operation,
            principal=action.principal.path,
            key_id=action.principal.key_id,
            run_id=action.run_id,
            model=action.model or None,
            served_model=routed.target.alias if routed else None,
            deployment=routed.target.name if routed else None,
            decision=decision.effect if decision else "deny",
            reasons="; ".join(decision.reasons) if decision else (error.code if error else ""),
            status=error.status if error else 200,
            error_code=error.code if error else None,
            stream=action.stream,
            attempts=routed.attempts if routed else 0,
            latency_ms=(self.clock.monotonic() - call.started) * 1000,
            ttft_ms=call.ttft_ms,
            input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens,
            usage_source=usage.source,
            cost_usd=call.cost,
            signals=signals,
        )
        self._metrics.observe(entry)
        if self._tracing is not None:
            target = routed.target if routed else None
            self._tracing.record(
                entry,
                target.upstream.kind if target else None,
                target.spec.model if target else None,
            )
        return self._writer.append(entry)


class ModelCall:
    """One admitted model call; ``async with`` it so that it is settled and recorded."""

    def __init__(self, pipeline: Pipeline, action: Action) -> None:
        self._pipeline = pipeline
        self.action = action
        self.started = pipeline.clock.monotonic()
        self.decision: Decision | None = None
        self.routed: Routed | None = None
        self.admitted: Admitted | None = None
        self.usage: Usage | None = None
        self.error: GovernError | None = None
        self.body = b""
        self.ttft_ms: float | None = None
        self.cost = 0.0
        self.risk_points = 0.0
        self._finished = False

    def take_reply(self) -> None:
        """Check the upstream's status; for a whole reply, read its usage and price it."""
        assert self.routed is not None
        reply = self.routed.reply
        if reply.status >= 400:
            raise upstream_rejection(reply.status, reply.body, self.routed.target.name)
        if reply.chunks is None:
            self.body = reply.body
            self.ttft_ms = (self._pipeline.clock.monotonic() - self.started) * 1000
            self.usage = usage_of_body(reply.body) or Usage(self._prompt_tokens(), source="counted")
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
        that saw the end of the stream can already find its ledger entry.
        """
        assert self.routed is not None and self.routed.reply.chunks is not None
        meter = StreamMeter(self.action.include_usage, self._prompt_tokens)
        clock = self._pipeline.clock
        held = b""
        try:
            async for chunk in self.routed.reply.chunks:
                out = meter.feed(chunk)
                if out and self.ttft_ms is None:
                    self.ttft_ms = (clock.monotonic() - self.started) * 1000
                if meter.done:
                    held += out
                elif out:
                    yield out
            held += meter.tail()
            if not meter.done:
                raise UpstreamError(f"upstream {self.routed.target.name} ended the stream early")
        except GovernError as exc:
            self.error = exc
            held += b"data: " + orjson.dumps(exc.envelope()) + b"\n\n"
        finally:
            self.usage = meter.result()
        await self.finish(None)
        if held:
            yield held

    async def __aenter__(self) -> ModelCall:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.finish(exc)

    async def finish(self, exc: BaseException | None) -> None:
        """Release the upstream, settle and record (once; later calls do nothing)."""
        if self._finished:
            return
        self._finished = True
        if isinstance(exc, GovernError):
            self.error = exc
        elif exc is not None and self.error is None:
            if not isinstance(exc, Exception):
                self.error = ClientDisconnected("client closed the connection")
            else:
                log.error("internal error in %s", self.action.id, exc_info=exc)
                self.error = GovernError("internal error")
        if self.routed is not None:
            await self.routed.release()
        durable = self._pipeline.settle(self)
        if durable is not None:
            await durable
        if self.admitted is not None:
            usage = self.usage or Usage()
            used = usage.input_tokens + usage.output_tokens
            await self._pipeline.admission.release(self.admitted, self.cost, used)
        await self._pipeline.risk.observe(self.action, self.risk_points)


def upstream_rejection(status: int, body: bytes, target: str) -> GovernError:
    """The error to give a client when an upstream refuses a request (4xx)."""
    if status in (401, 403):
        return UpstreamError(f"upstream {target} refused governd's credentials")
    message = f"upstream {target} rejected the request"
    param = None
    try:
        err = orjson.loads(body).get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            param = err.get("param") if isinstance(err.get("param"), str) else None
        elif isinstance(err, str):
            message = err
    except (orjson.JSONDecodeError, AttributeError):
        pass
    exc = InvalidRequest(message, param=param)
    exc.status = status if 400 <= status < 500 else 400
    return exc
