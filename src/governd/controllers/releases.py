"""Releases in the server: each tick, count, judge, and move every release one step at a time.

Every ``tick_s`` (1 s) a replica adds the arms' counts it saw into the shared
rows and reads back every replica's totals (``ReleaseStore.exchange``),
reads every release's state, puts the splitting ones in force for routing
(``Releases.update``), then judges each running release on its current
epoch's counts (``release_checks.judge``):

- its SLO burning on both arms, or releases frozen by an error-budget
  policy (``freeze_releases``): *frozen* (the canary is not blamed), until
  neither holds;
- a failed check: *aborted*, its weight 0 at once;
- else its step: ``set_weight`` once every headroom check holds (else the
  step is refused, with the numbers), ``pause`` once its duration and events
  are met, ``analysis`` once every check is successful; past the last step,
  *promoted*.

A transition is a compare-and-set on the release's row: one replica makes it
and records it, with the figures that justified it, as a ledger entry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from governd.actions import within
from governd.clock import Clock
from governd.config import GovernConfig
from governd.config.releases import ReleaseConfig
from governd.config.slos import SloConfig
from governd.controllers.release_checks import Judgement, judge
from governd.controllers.release_headroom import (
    Remaining,
    Room,
    SloStanding,
    cost,
    error_budget,
    risk,
)
from governd.governance.budgets import Budgets
from governd.governance.overrides import Overrides
from governd.governance.releases import SPLITTING, Live, Releases
from governd.ledger.entries import LedgerEntry
from governd.ledger.releases.counts import ReleaseCounts, Tallies, Tally
from governd.ledger.releases.store import ReleaseRow, ReleaseStore, new_row
from governd.ledger.slos.evaluator import SloEvaluator
from governd.ledger.slos.indicators import indicator
from governd.ledger.writer import control_entry

log = logging.getLogger("governd.releases")
#: Appends an entry to the ledger.
Append = Callable[[LedgerEntry], Awaitable[None]]
#: Without an SLO, errors are judged against a 99.9% objective over 30 days, paging at 14.4x.
DEFAULT_BUDGET, DEFAULT_WINDOW, DEFAULT_BURN = 0.001, 30 * 86400.0, 14.4
#: The seconds of ledger over which an alias's call rate is measured for headroom.
RATE_WINDOW_S = 300.0


class ReleaseController:
    """Counts, judges and moves the releases of one server."""

    def __init__(
        self,
        cfg: GovernConfig,
        store: ReleaseStore,
        counts: ReleaseCounts,
        releases: Releases,
        overrides: Overrides,
        evaluator: SloEvaluator | None,
        budgets: Budgets,
        append: Append,
        clock: Clock,
        tick_s: float = 1.0,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.counts = counts
        self.releases = releases
        self._overrides = overrides
        self._evaluator = evaluator
        self._budgets = budgets
        self._append = append
        self.clock = clock
        self.tick_s = tick_s
        self._slos = {slo.name: slo for slo in cfg.slos}
        self._configs: dict[str, ReleaseConfig] = {}
        self._classified: set[str] = set()
        #: The latest judgement and headroom of each release (what ``status`` shows).
        self.judged: dict[str, Judgement] = {}
        self.rooms: dict[str, list[Room]] = {}
        self.tallies: Tallies = {}

    async def start(self) -> None:
        """Store the config's releases (those not stored yet), then take up every release."""
        now = self.clock.now()
        for release in self.cfg.releases:
            row = new_row(release.name, release.model_dump(mode="json"), "config", now)
            await asyncio.to_thread(self.store.add, row)
        self.refresh(await asyncio.to_thread(self.store.all))

    async def append_entry(self, entry: LedgerEntry) -> None:
        """Record an entry (a command's refusal, a release's creation)."""
        await self._append(entry)

    def config(self, row: ReleaseRow) -> ReleaseConfig:
        """A release's parsed spec."""
        found = self._configs.get(row.name)
        if found is None:
            found = self._configs[row.name] = ReleaseConfig.model_validate(row.spec)
        return found

    def refresh(self, rows: list[ReleaseRow]) -> None:
        """Put the releases in force for routing, and count the calls of those not ended."""
        live = [Live(self.config(r), r.phase, r.weight, r.epoch, r.updated_at) for r in rows]
        self.releases.update(live)
        for row in rows:
            slo = self._slo(self.config(row))
            if slo is not None and not row.ended and row.name not in self._classified:
                self.counts.judge_with(row.name, indicator(slo))
                self._classified.add(row.name)

    async def tick(self) -> None:
        """Exchange counts, read every release, judge and move the running ones."""
        now = self.clock.now()
        rows = await asyncio.to_thread(self.store.all)
        self.refresh(rows)
        wanted = [(r.name, r.epoch) for r in rows if r.phase in SPLITTING]
        self.tallies = await asyncio.to_thread(self.store.exchange, self.counts.drain(), wanted)
        for row in rows:
            if row.phase in ("running", "frozen"):
                changed = await self._judge(row, now)
                if changed is not None:
                    self.refresh([changed if r.name == changed.name else r for r in rows])

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.warning("release tick failed", exc_info=True)
            await asyncio.sleep(self.tick_s)

    def arms(self, row: ReleaseRow) -> tuple[Tally, Tally]:
        """The canary's and stable's counts in the release's current epoch."""
        return (
            self.tallies.get((row.name, row.epoch, "canary"), Tally()),
            self.tallies.get((row.name, row.epoch, "stable"), Tally()),
        )

    async def _judge(self, row: ReleaseRow, now: float) -> ReleaseRow | None:
        cfg = self.config(row)
        budget, _, burn = self.terms(cfg)
        canary, stable = self.arms(row)
        judgement = self.judged[row.name] = judge(cfg.analysis, budget, burn, canary, stable)
        failed = judgement.failed
        canary_burns = any(c.name == "errors" for c in failed)
        freeze = self._frozen_by(cfg.model) or (
            "its SLO burns on both arms (not the canary's doing)"
            if canary_burns and judgement.stable_burns
            else None
        )
        # An outage's evidence is about the outage: each freeze and thaw starts counting anew.
        fresh: dict[str, Any] = {
            "phase": "running" if row.phase == "frozen" else "frozen",
            "epoch": row.epoch + 1,
            "epoch_at": now,
        }
        if freeze is not None:
            if row.phase == "frozen":
                return None
            return await self.move(
                row, now, "release_frozen", f"frozen: {freeze}", judgement.checks, **fresh
            )
        if row.phase == "frozen":
            return await self.move(
                row, now, "release_resumed", "unfrozen: nothing burns", (), **fresh
            )
        if failed:
            why = "; ".join(f"{c.name}: {c.why}" for c in failed)
            return await self.move(
                row,
                now,
                "release_aborted",
                f"aborted: {why}",
                judgement.checks,
                phase="aborted",
                weight=0.0,
            )
        return await self._advance(row, cfg, judgement, canary, stable, now)

    async def _advance(
        self,
        row: ReleaseRow,
        cfg: ReleaseConfig,
        judgement: Judgement,
        canary: Tally,
        stable: Tally,
        now: float,
    ) -> ReleaseRow | None:
        if row.step >= len(cfg.steps):
            return await self.move(
                row,
                now,
                "release_promoted",
                "promoted: every step done",
                judgement.checks,
                phase="promoted",
                weight=100.0,
            )
        step = cfg.steps[row.step]
        if step.set_weight is not None:
            rooms = self.rooms[row.name] = await self.headroom(
                row, cfg, step.set_weight, canary, stable, now
            )
            short = [r for r in rooms if not r.holds]
            if short:
                said = f"step {row.step} refused ({', '.join(r.name for r in short)})"
                note = f"{said}: " + "; ".join(r.why for r in short)
                if row.note.startswith(said):
                    return None  # said once per step and reason; status shows the live figures
                return await self.move(row, now, "release_blocked", note, rooms, note=note)
            return await self.move(
                row,
                now,
                "release_step",
                f"step {row.step}: canary at {step.set_weight:g}%",
                rooms,
                step=row.step + 1,
                weight=step.set_weight,
                epoch=row.epoch + 1,
                epoch_at=now,
                since=now,
            )
        if step.pause is not None:
            waited = now - row.since >= (step.pause.duration or 0)
            seen = canary.events >= (step.pause.min_events or 0)
            if not (waited and seen):
                return None
            why = f"step {row.step}: paused {now - row.since:.0f} s, {canary.events:.0f} canary events"
            return await self.move(
                row, now, "release_step", why, judgement.checks, step=row.step + 1, since=now
            )
        if judgement.conclusive:
            why = f"step {row.step}: every check successful"
            return await self.move(
                row, now, "release_step", why, judgement.checks, step=row.step + 1, since=now
            )
        waiting = f"step {row.step} waits: " + "; ".join(
            f"{c.name}: {c.why}" for c in judgement.checks if c.verdict != "successful"
        )
        if row.note.startswith(f"step {row.step} waits"):
            return None
        return await self.move(row, now, "release_waiting", waiting, judgement.checks, note=waiting)

    async def headroom(
        self,
        row: ReleaseRow,
        cfg: ReleaseConfig,
        weight: float,
        canary: Tally,
        stable: Tally,
        now: float,
    ) -> list[Room]:
        """Every headroom check of a weight step, with its figures."""
        budget, window, burn = self.terms(cfg)
        callers = await asyncio.to_thread(self.store.callers, cfg.model, now - RATE_WINDOW_S)
        rate = sum(callers.values()) / RATE_WINDOW_S
        p0 = min(burn * budget, 0.999)
        found = [
            error_budget(cfg, self._standing(cfg)),
            risk(cfg, weight, rate, budget, window, p0, self.tick_s),
            cost(cfg, weight, rate, canary, stable, callers, await self._remaining(callers)),
        ]
        return [r for r in found if r is not None]

    async def _remaining(self, callers: Mapping[str, int]) -> list[Remaining]:
        out = []
        for key in self._budgets.all():
            limit = self._budgets.limit(key)
            if key.unit != "usd" or limit is None or not any(within(c, key.node) for c in callers):
                continue
            spent, reserved = await self._budgets.state.usage(key, self._budgets.window(key)[0])
            out.append(Remaining(key.node, key.name, limit.limit - spent - reserved))
        return out

    def terms(self, cfg: ReleaseConfig) -> tuple[float, float, float]:
        """The error budget, window and failing burn rate a release is judged by."""
        slo = self._slo(cfg)
        if slo is None:
            return DEFAULT_BUDGET, DEFAULT_WINDOW, cfg.analysis.max_burn or DEFAULT_BURN
        pages = [pair.factor(slo.window) for pair in slo.alerts if pair.severity == "page"]
        return slo.budget, slo.window, cfg.analysis.max_burn or max(pages, default=DEFAULT_BURN)

    def _slo(self, cfg: ReleaseConfig) -> SloConfig | None:
        return self._slos.get(cfg.analysis.slo) if cfg.analysis.slo else None

    def _standing(self, cfg: ReleaseConfig) -> SloStanding | None:
        slo = self._slo(cfg)
        if slo is None or self._evaluator is None:
            return None
        groups = self._evaluator.status(slo.name)
        remaining = min((g.remaining for g in groups), default=1.0)
        paging = any("page" in g.firing for g in groups)
        return SloStanding(slo.budget, slo.window, remaining, paging)

    def _frozen_by(self, model: str) -> str | None:
        frozen = [
            o
            for o in self._overrides.all().values()
            if o.kind == "freeze_releases" and o.target in ("", model)
        ]
        return f"releases frozen by {frozen[0].source}" if frozen else None

    async def move(
        self,
        row: ReleaseRow,
        now: float,
        operation: str,
        summary: str,
        evidence: Any,
        by: str = "",
        **changes: Any,
    ) -> ReleaseRow | None:
        """Change a release if no replica did first; record the change with its evidence."""
        changes.setdefault("note", summary)
        new = await asyncio.to_thread(self.store.change, row, now, **changes)
        if new is None:
            return None
        signals = {
            "release": row.name,
            "model": self.config(row).model,
            "from": {"phase": row.phase, "step": row.step, "weight": row.weight},
            "to": {"phase": new.phase, "step": new.step, "weight": new.weight},
            "evidence": [e.as_dict() for e in evidence],
        }
        entry = control_entry(operation, f"release {row.name}: {summary}", by, now, signals=signals)
        await self._append(entry)
        return new
