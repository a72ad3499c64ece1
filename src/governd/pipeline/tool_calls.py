"""Tool calls through the pipeline: admit (waiting for a human when asked) -> call -> record."""

from __future__ import annotations

import mcp_types as types

from governd.actions import Action, Decision
from governd.clock import Clock
from governd.errors import (
    ApprovalDenied,
    ApprovalRequired,
    GovernError,
    UpstreamUnavailable,
)
from governd.execution.mcp_upstream import McpUnavailable, McpUpstream, Relay
from governd.governance.admission import Admission
from governd.governance.approvals import Approvals
from governd.pipeline.entries import Timing, ToolTarget, tool_entry
from governd.pipeline.recorder import Recorder


class ToolCalls:
    """Admits, executes and records tool calls."""

    def __init__(
        self, admission: Admission, approvals: Approvals, recorder: Recorder, clock: Clock
    ) -> None:
        self._admission = admission
        self._approvals = approvals
        self._recorder = recorder
        self._clock = clock

    async def call(
        self, action: Action, upstream: McpUpstream, target: ToolTarget, relay: Relay | None = None
    ) -> types.CallToolResult:
        """Admit, execute and record one tool call; a refusal or failure is recorded, then raised."""
        started = self._clock.monotonic()
        decision: Decision | None = None
        error: GovernError | None = None
        result: types.CallToolResult | None = None
        try:
            self._recorder.check_recordable()
            decision = await self._admit(action, target.server, target.tier or "destructive")
            await self._admission.hold_run(action)
            result = await upstream.call_tool(target.tool, action.body, relay)
            return result
        except GovernError as exc:
            error = exc
            raise
        except McpUnavailable as exc:
            error = UpstreamUnavailable(str(exc))
            raise error from None
        finally:
            recorded = error.decision if error is not None and error.decision else decision
            await self._record(action, target, recorded, error, result, started)

    async def refuse(self, action: Action, target: ToolTarget, error: GovernError) -> None:
        """Record a tool call refused before admission (unknown, quarantined, bad arguments)."""
        await self._record(action, target, None, error, None, self._clock.monotonic())

    async def _record(
        self,
        action: Action,
        target: ToolTarget,
        decision: Decision | None,
        error: GovernError | None,
        result: types.CallToolResult | None,
        started: float,
    ) -> None:
        timing = Timing(self._clock.now(), (self._clock.monotonic() - started) * 1000)
        weights = self._admission.runs.weights
        entry, points = tool_entry(action, target, decision, error, result, weights, timing)
        await self._recorder.record(entry, action, points)

    async def _admit(self, action: Action, server: str, tier: str) -> Decision:
        """Admission, waiting for a human when a policy requires approval."""
        try:
            return await self._admission.admit_tool(action, server, tier)
        except ApprovalRequired as held:
            policy = held.policy
            asked = held.decision or Decision("require_approval", (), policy=policy)
        verdict = await self._approvals.hold(action, tier, policy)
        reasons = (*asked.reasons, f"approval {verdict.id}")
        if verdict.status == "approved":
            return Decision("allow", (*reasons, f"approved by {verdict.by}"))
        if verdict.status == "denied":
            raise ApprovalDenied(
                f"denied by {verdict.by} (approval {verdict.id}, asked by policy {policy})",
                policy=policy,
                decision=Decision("deny", (*reasons, f"denied by {verdict.by}"), policy=policy),
            )
        raise ApprovalRequired(
            f"approval {verdict.id} was not given in time (policy {policy})",
            policy=policy,
            decision=Decision("deny", (*reasons, "approval timed out"), policy=policy),
        )
