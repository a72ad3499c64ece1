"""What people do to releases: create, start behind launch gates, pause, resume, promote, abort.

``start`` checks the launch gates first -- every piece of evaluation evidence
fresh, at its threshold and about this exact canary; every safeguard policy
present and enforced; a human's approval at tiers high and critical -- and
refuses with the findings (409, and a ``release_refused`` entry) when one
fails. ``kill`` aborts every release of a model alias in one call. Each
command is a compare-and-set recorded as a ledger entry naming who did it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError

from governd.config import ConfigError, ConfigProblem
from governd.config.references import release_references
from governd.config.releases import APPROVED_TIERS, ReleaseConfig, Step
from governd.controllers.release_checks import p95
from governd.controllers.release_evidence import judge_evidence
from governd.controllers.releases import ReleaseController
from governd.errors import Conflict, InvalidRequest, NotFound
from governd.governance.approvals import Approvals, Ask
from governd.governance.releases import SPLITTING
from governd.ledger.releases.counts import Tally
from governd.ledger.releases.store import ReleaseRow, new_row
from governd.ledger.writer import control_entry

#: How long a release's approval may wait for a human.
APPROVAL_TIMEOUT_S = 86400.0


class ReleaseCommands:
    """The operations the admin API and the CLI offer on releases."""

    def __init__(self, controller: ReleaseController, approvals: Approvals) -> None:
        self._c = controller
        self._approvals = approvals

    async def create(self, spec: dict[str, Any], by: str) -> ReleaseRow:
        """Create a release from its spec (the shape of a ``releases:`` item)."""
        try:
            release = ReleaseConfig.model_validate(spec)
        except ValidationError as exc:
            wrong = [(tuple(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
            raise _invalid(wrong) from None
        wrong = release_references(self._c.cfg, release)
        if wrong:
            raise _invalid(wrong)
        now = self._c.clock.now()
        row = new_row(release.name, release.model_dump(mode="json"), "api", now)
        if not await asyncio.to_thread(self._c.store.add, row):
            raise Conflict(f"a release named {release.name!r} exists")
        detail = f"release {release.name}: created ({release.model}: {release.canary.describe()})"
        await self._c.append_entry(
            control_entry(
                "release_created",
                detail,
                by,
                now,
                signals={"release": release.name, "spec": row.spec},
            )
        )
        return row

    async def start(self, name: str, by: str) -> ReleaseRow:
        """Start a release once its launch gates hold; else ``Conflict`` with what failed."""
        row = await self._row(name, ("created",))
        cfg = self._c.config(row)
        now = self._c.clock.now()
        rows = await asyncio.to_thread(self._c.store.all)
        busy = [
            r.name for r in rows if r.phase in SPLITTING and self._c.config(r).model == cfg.model
        ]
        if busy:
            raise Conflict(f"release {busy[0]} of {cfg.model!r} is in force: end it first")
        findings = [judge_evidence(e, cfg.canary.digest(), now) for e in cfg.gates.evidence]
        wrong = [f"evidence {f.file}: {f.why}" for f in findings if not f.holds]
        enforced = {p.id for p in self._c.cfg.policies if p.mode == "enforce"}
        wrong += [
            f"safeguard {p!r} is not an enforced policy"
            for p in cfg.gates.safeguards
            if p not in enforced
        ]
        approved_by = None
        if cfg.gates.tier in APPROVED_TIERS and not wrong:
            approved_by, why = await self._approval(row, cfg, by)
            if approved_by is None:
                wrong.append(why)
        if wrong:
            detail = f"release {name}: start refused: " + "; ".join(wrong)
            signals = {
                "release": name,
                "digest": cfg.canary.digest(),
                "evidence": [f.as_dict() for f in findings],
            }
            await self._c.append_entry(
                control_entry("release_refused", detail, by, now, signals=signals)
            )
            raise Conflict(detail)
        said = f"started on {cfg.canary.digest()}" + (
            f", approved by {approved_by}" if approved_by else ""
        )
        return await self._move(
            row, "release_started", said, findings, by, phase="running", step=0, since=now
        )

    async def pause(self, name: str, by: str) -> ReleaseRow:
        """Stop taking steps (traffic stays split as it is)."""
        row = await self._row(name, ("running", "frozen"))
        return await self._move(row, "release_paused", f"paused by {by}", (), by, phase="paused")

    async def resume(self, name: str, by: str) -> ReleaseRow:
        """Take steps again after a pause."""
        row = await self._row(name, ("paused",))
        now = self._c.clock.now()
        return await self._move(
            row, "release_resumed", f"resumed by {by}", (), by, phase="running", since=now
        )

    async def promote(self, name: str, by: str, full: bool = False) -> ReleaseRow:
        """Skip the current step (``full``: every step left, to 100%), whatever its checks say."""
        row = await self._row(name, SPLITTING)
        cfg = self._c.config(row)
        now = self._c.clock.now()
        if full or (row.step + 1 >= len(cfg.steps) and cfg.steps[row.step].set_weight is None):
            return await self._move(
                row, "release_promoted", f"promoted by {by}", (), by, phase="promoted", weight=100.0
            )
        step = cfg.steps[row.step]
        changes: dict[str, Any] = {"step": row.step + 1, "since": now}
        if step.set_weight is not None:
            changes.update(weight=step.set_weight, epoch=row.epoch + 1, epoch_at=now)
        said = f"step {row.step} ({step.kind}) taken by {by}, unchecked"
        return await self._move(row, "release_step", said, (), by, **changes)

    async def abort(self, name: str, by: str, reason: str = "") -> ReleaseRow:
        """Send every call back to stable, for good (a promoted release is rolled back)."""
        row = await self._row(name, (*SPLITTING, "created", "promoted"))
        said = f"aborted by {by}" + (f": {reason}" if reason else "")
        return await self._move(row, "release_aborted", said, (), by, phase="aborted", weight=0.0)

    async def kill(self, model: str, by: str, reason: str = "") -> list[ReleaseRow]:
        """Abort every release of ``model`` not ended, and roll back a promoted one: the kill switch."""
        if model not in self._c.cfg.models:
            raise NotFound(f"unknown model {model!r}", param="model")
        rows = await asyncio.to_thread(self._c.store.all)
        live = (*SPLITTING, "created", "promoted")
        found = [r for r in rows if r.phase in live and self._c.config(r).model == model]
        return [await self.abort(r.name, by, reason or "kill switch") for r in found]

    async def _row(self, name: str, phases: tuple[str, ...]) -> ReleaseRow:
        row = await asyncio.to_thread(self._c.store.get, name)
        if row is None:
            raise NotFound(f"no release {name!r}", param="name")
        if row.phase not in phases:
            raise Conflict(f"release {name} is {row.phase}: this needs it {' or '.join(phases)}")
        return row

    async def _move(
        self, row: ReleaseRow, operation: str, said: str, evidence: Any, by: str, **changes: Any
    ) -> ReleaseRow:
        new = await self._c.move(row, self._c.clock.now(), operation, said, evidence, by, **changes)
        if new is None:
            raise Conflict(f"release {row.name} changed meanwhile: try again")
        self._c.refresh([new])
        return new

    async def _approval(
        self, row: ReleaseRow, cfg: ReleaseConfig, by: str
    ) -> tuple[str | None, str]:
        """Who approved the start, or why it waits (asking a human when nobody was asked yet)."""
        asked = await self._approvals.status(row.approval) if row.approval else None
        if asked is not None and asked.status == "approved":
            return asked.by, ""
        if asked is not None and asked.status == "pending":
            return None, f"waits for approval {asked.id} (governd approvals approve {asked.id})"
        ask = Ask(
            f"release:{row.name}",
            cfg.gates.tier,
            "release_gate",
            {"release": row.name, "canary": cfg.canary.digest()},
            self._c.cfg.principals.org,
        )
        approval = await self._approvals.ask(ask, APPROVAL_TIMEOUT_S)
        now = self._c.clock.now()
        await asyncio.to_thread(self._c.store.change, row, now, approval=approval)
        return None, f"tier {cfg.gates.tier} needs a human: governd approvals approve {approval}"


def _invalid(wrong: list[tuple[tuple[str, ...], str]]) -> InvalidRequest:
    problems = [ConfigProblem(".".join(at) or "release", None, why) for at, why in wrong]
    return InvalidRequest(str(ConfigError("release", problems)), param=problems[0].path)


def describe(c: ReleaseController, row: ReleaseRow) -> dict[str, Any]:
    """A release as ``status`` shows it: arms, weights, step, every check and headroom left."""
    cfg = c.config(row)
    canary, stable = c.arms(row)
    judged = c.judged.get(row.name)
    live = c.releases.get(cfg.model)
    routed = live.weight if live is not None and live.config.name == row.name else None
    if live is not None and live.phase == "promoted" and routed is not None:
        routed = 100.0
    return {
        "name": row.name,
        "model": cfg.model,
        "phase": row.phase,
        "step": row.step,
        "steps": [_step(s) for s in cfg.steps],
        "weight": row.weight,
        #: The canary's weight this replica routes with (None: not in force here); every
        #: replica takes up a change within a tick.
        "routed_weight": routed,
        "sticky": cfg.sticky,
        "since": row.since,
        "note": row.note,
        "source": row.source,
        "approval": row.approval,
        "tier": cfg.gates.tier,
        "canary": {
            "target": cfg.canary.describe(),
            "digest": cfg.canary.digest(),
            **arm_figures(canary),
        },
        "stable": {"target": cfg.stable.describe(), **arm_figures(stable)},
        "checks": [ch.as_dict() for ch in judged.checks] if judged else [],
        "headroom": [r.as_dict() for r in c.rooms.get(row.name, [])],
        "updated_at": row.updated_at,
    }


def arm_figures(t: Tally) -> dict[str, Any]:
    """What an arm did in the current epoch."""
    return {
        "events": t.events,
        "errors": t.bad,
        "error_ratio": t.bad / t.judged if t.judged else None,
        "refused": t.refused,
        "p95_latency_ms": p95(t.latency) if t.latency else None,
        "p95_ttft_ms": p95(t.ttft) if t.ttft else None,
        "usd_per_call": t.cost / t.ok if t.ok else None,
        "tool_calls": t.tools,
        "risk_events": t.risk,
    }


def _step(step: Step) -> dict[str, Any]:
    if step.set_weight is not None:
        return {"set_weight": step.set_weight}
    if step.pause is not None:
        return {"pause": step.pause.model_dump(exclude_none=True)}
    return {"analysis": {}}
