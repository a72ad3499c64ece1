"""Releases in the ledger's database, shared by every replica.

A release is one row: its spec, phase, step, weight and epoch, changed only
by compare-and-set on its ``version`` (``change``), so of all the replicas
that judge the same transition, one makes it and records it. Its arms'
counts are rows that every replica adds to (``exchange``), and the arm of
each agent run is pinned by the first replica that serves it (``pin``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from governd.ledger.releases.counts import CountKey, Tallies, tallies
from governd.ledger.tables import entries_named, release_counts, release_runs, releases

#: Where a release is: created (not started), running, paused (by a human), frozen (its SLO
#: burns on both arms, or releases are frozen), promoted, aborted.
PHASES = ("created", "running", "paused", "frozen", "promoted", "aborted")
ENDED = ("promoted", "aborted")
#: The operations of the ledger entries that record a release's changes.
OPERATIONS = (
    "release_created",
    "release_refused",
    "release_started",
    "release_step",
    "release_blocked",
    "release_waiting",
    "release_frozen",
    "release_resumed",
    "release_paused",
    "release_promoted",
    "release_aborted",
)
_HISTORY_SCAN = 5000


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """One release's state."""

    name: str
    spec: dict[str, Any]
    #: ``config`` (declared in governd.yaml) or ``api`` (created at runtime).
    source: str
    phase: str
    step: int
    weight: float
    #: Which counts it is judged on: anew at each weight, freeze and thaw.
    epoch: int
    #: When its weight was last set.
    epoch_at: float
    #: When its current step began.
    since: float
    version: int
    #: Why it is where it is (the last transition, or what it waits for).
    note: str
    #: The approval its start needs or had (high and critical tiers).
    approval: str | None
    created_at: float
    updated_at: float

    @property
    def ended(self) -> bool:
        """Promoted or aborted."""
        return self.phase in ENDED


def new_row(name: str, spec: Mapping[str, Any], source: str, at: float) -> ReleaseRow:
    """A release as created: no step taken, all traffic on stable."""
    return ReleaseRow(
        name, dict(spec), source, "created", 0, 0.0, -1, at, at, 0, "created", None, at, at
    )


class ReleaseStore:
    """The release tables of one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        add = insert(release_counts)
        self._add = add.on_conflict_do_update(
            index_elements=["release", "epoch", "arm", "metric", "bucket"],
            set_={"value": release_counts.c.value + add.excluded.value},
        )
        self._new = insert(releases).on_conflict_do_nothing()
        self._pin = insert(release_runs).on_conflict_do_nothing()

    def add(self, row: ReleaseRow) -> bool:
        """Store a new release; False if one of that name exists."""
        with self._engine.begin() as conn:
            done = conn.execute(self._new, _values(row))
        return done.rowcount == 1

    def get(self, name: str) -> ReleaseRow | None:
        """A release, if it exists."""
        with self._engine.connect() as conn:
            found = conn.execute(sa.select(releases).where(releases.c.name == name)).first()
        return None if found is None else _row(found._mapping)

    def all(self) -> list[ReleaseRow]:
        """Every release, by name."""
        with self._engine.connect() as conn:
            found = conn.execute(sa.select(releases).order_by(releases.c.name)).all()
        return [_row(r._mapping) for r in found]

    def change(self, row: ReleaseRow, at: float, **changes: Any) -> ReleaseRow | None:
        """Apply ``changes`` if the release is still at ``row``'s version; the new row, or None."""
        new = dataclasses.replace(row, **changes, version=row.version + 1, updated_at=at)
        values = _values(new)
        del values["name"]
        c = releases.c
        with self._engine.begin() as conn:
            done = conn.execute(
                releases.update().where(c.name == row.name, c.version == row.version).values(values)
            )
        return new if done.rowcount == 1 else None

    def exchange(
        self, deltas: Mapping[CountKey, float], wanted: Iterable[tuple[str, int]]
    ) -> Tallies:
        """Add this replica's counts, then read the totals of each (release, epoch) in ``wanted``."""
        rows = [
            {"release": r, "epoch": e, "arm": a, "metric": m, "bucket": b, "value": v}
            for (r, e, a, m, b), v in sorted(deltas.items())  # key order: upserts never deadlock
        ]
        c = release_counts.c
        want = [sa.and_(c.release == r, c.epoch == e) for r, e in set(wanted)]
        with self._engine.begin() as conn:
            if rows:
                conn.execute(self._add, rows)
            if not want:
                return {}
            found = conn.execute(
                sa.select(c.release, c.epoch, c.arm, c.metric, c.bucket, c.value).where(
                    sa.or_(*want)
                )
            ).all()
        return tallies((r[0], r[1], r[2], r[3], r[4], r[5]) for r in found)

    def callers(self, model: str, since: float) -> dict[str, int]:
        """Model calls to ``model`` since ``since`` by caller (``path`` and ``path/key``)."""
        c = entries_named.c
        q = (
            sa.select(c.principal, c.key_id, sa.func.count())
            .where(c.kind == "model_call", c.model == model, c.ts >= since)
            .group_by(c.principal, c.key_id)
        )
        out: dict[str, int] = {}
        with self._engine.connect() as conn:
            for principal, key_id, n in conn.execute(q):
                out[f"{principal}/{key_id}" if key_id else principal] = int(n)
        return out

    def history(self, name: str, limit: int) -> list[dict[str, Any]]:
        """A release's recorded changes, newest first: when, what, who, and their signals."""
        c = entries_named.c
        q = (
            sa.select(c.ts, c.operation, c.principal, c.reasons, c.signals)
            .where(c.kind == "control", c.operation.in_(OPERATIONS))
            .order_by(c.seq.desc())
            .limit(_HISTORY_SCAN)
        )
        out = []
        with self._engine.connect() as conn:
            for r in conn.execute(q):
                signals = orjson.loads(r.signals) if r.signals else {}
                if signals.get("release") == name:
                    out.append(
                        {
                            "ts": r.ts,
                            "operation": r.operation,
                            "by": r.principal,
                            "detail": r.reasons,
                            "signals": signals,
                        }
                    )
                    if len(out) >= limit:
                        break
        return out

    def pin(self, release: str, run_id: str, arm: str, at: float) -> str:
        """Pin a run to ``arm`` unless a replica pinned it first; the arm it is pinned to."""
        c = release_runs.c
        with self._engine.begin() as conn:
            conn.execute(self._pin, {"release": release, "run_id": run_id, "arm": arm, "at": at})
            found = conn.execute(
                sa.select(c.arm).where(c.release == release, c.run_id == run_id)
            ).scalar_one()
        return str(found)


def _values(row: ReleaseRow) -> dict[str, Any]:
    values = dataclasses.asdict(row)
    values["spec"] = orjson.dumps(row.spec).decode()
    return values


def _row(m: sa.RowMapping) -> ReleaseRow:
    return ReleaseRow(
        name=m["name"],
        spec=orjson.loads(m["spec"]),
        source=m["source"],
        phase=m["phase"],
        step=m["step"],
        weight=m["weight"],
        epoch=m["epoch"],
        epoch_at=m["epoch_at"],
        since=m["since"],
        version=m["version"],
        note=m["note"],
        approval=m["approval"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )
