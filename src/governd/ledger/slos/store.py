"""SLO counts and alert states in the ledger's database, shared by every replica.

Each replica adds what it counted since its last tick into one row per SLO,
group, bucket width and bucket start (an upsert that adds, so replicas never
overwrite each other), then reads back the buckets that may have changed: the
totals, every replica's events, which its evaluator takes as the windows'
truth. A restarted replica reads every bucket its windows still cover, so an
error budget survives deploys. Rows a window no longer covers are pruned.

An alert's state is a row too, and so is each error-budget policy's: a
change is recorded by the one replica whose compare-and-set flips the row
(``claim``), so each firing, resolving, action and undo is one ledger entry
however many replicas judged it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from governd.ledger.control_states import ControlStates
from governd.ledger.slos.alerts import OPERATIONS
from governd.ledger.slos.evaluator import Delta, Group, Total
from governd.ledger.tables import entries_named, slo_buckets

#: Per SLO, its bucket widths and the seconds of history each keeps.
Retention = Mapping[str, Mapping[int, int]]
#: How many of a width's newest buckets a tick reads back: a replica's counts that arrive
#: later than this land only in the coarser windows.
RECENT_BUCKETS = 3
#: The scope of an SLO's states in ``control_states``.
SCOPE = "slo:"
#: How many of the newest alert entries ``history`` looks through.
_HISTORY_SCAN = 2000


def encode(group: Group) -> str:
    """A group as its row key: ``''``, or JSON of its (label, value) pairs."""
    return orjson.dumps([list(pair) for pair in group]).decode() if group else ""


def decode(text: str) -> Group:
    """A row key back into a group."""
    return tuple((str(k), str(v)) for k, v in orjson.loads(text)) if text else ()


class SloStore:
    """Reads and writes the SLO tables of one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        add = insert(slo_buckets)
        self._add = add.on_conflict_do_update(
            index_elements=["slo", "grp", "width", "start"],
            set_={
                "good": slo_buckets.c.good + add.excluded.good,
                "bad": slo_buckets.c.bad + add.excluded.bad,
            },
        )
        self.states = ControlStates(engine)

    def exchange(self, deltas: Iterable[Delta], retention: Retention, now: float) -> list[Total]:
        """Add ``deltas`` into every bucket width of their SLO, then read the recent totals back."""
        rows = _rows(deltas, retention)
        since = {
            (name, width): now - RECENT_BUCKETS * width
            for name, widths in retention.items()
            for width in widths
        }
        for r in rows:  # a bucket just added to is read back however old it is
            key = (r["slo"], r["width"])
            since[key] = min(since[key], r["start"])
        with self._engine.begin() as conn:
            if rows:
                conn.execute(self._add, rows)
            return _totals(conn, since)

    def load(self, retention: Retention, now: float) -> list[Total]:
        """Every bucket the SLOs' windows still cover (a replica's start)."""
        since = {
            (name, width): now - keep
            for name, widths in retention.items()
            for width, keep in widths.items()
        }
        with self._engine.connect() as conn:
            return _totals(conn, since)

    def prune(self, retention: Retention, now: float) -> int:
        """Delete the buckets no window covers any more, and those of widths no longer counted."""
        c = slo_buckets.c
        deleted = 0
        with self._engine.begin() as conn:
            for name, widths in retention.items():
                stale = [
                    sa.and_(c.width == width, c.start < now - keep)
                    for width, keep in widths.items()
                ]
                gone = conn.execute(
                    slo_buckets.delete().where(
                        c.slo == name, sa.or_(c.width.not_in(list(widths)), *stale)
                    )
                )
                deleted += gone.rowcount
        return deleted

    def claim(self, slo: str, group: Group, name: str, on: bool, at: float) -> bool:
        """Turn state ``name`` of an SLO group (an alert severity, a policy) on or off.

        True for the one caller that flipped it: that caller records the change.
        """
        return self.states.claim(SCOPE + slo, encode(group), name, on, at)

    def history(self, slo: str, limit: int) -> list[dict[str, Any]]:
        """The SLO's newest recorded alert transitions (their entries' signals), newest first."""
        found = self.recorded(list(OPERATIONS.values()))
        return [t for t in found if t.get("slo") == slo][:limit]

    def recorded(self, operations: list[str]) -> list[dict[str, Any]]:
        """The signals of the newest control entries of ``operations``, newest first."""
        c = entries_named.c
        q = (
            sa.select(c.signals)
            .where(c.kind == "control", c.operation.in_(operations))
            .order_by(c.seq.desc())
            .limit(_HISTORY_SCAN)
        )
        with self._engine.connect() as conn:
            return [orjson.loads(r.signals) for r in conn.execute(q) if r.signals]

    def alerts(self) -> list[dict[str, Any]]:
        """Every SLO state (alert severities, policies): slo, group, name, on and since when."""
        return [
            {
                "slo": st.scope.removeprefix(SCOPE),
                "group": decode(st.group),
                "severity": st.name,
                "firing": st.active,
                "since": st.since,
            }
            for st in self.states.all(SCOPE)
        ]


def _rows(deltas: Iterable[Delta], retention: Retention) -> list[dict[str, Any]]:
    """One row per bucket the deltas touch, summed, in key order (so upserts never deadlock)."""
    summed: dict[tuple[str, str, int, int], list[int]] = {}
    for d in deltas:
        grp = encode(d.group)
        for width in retention.get(d.slo, {}):
            pair = summed.setdefault((d.slo, grp, width, int(d.start // width * width)), [0, 0])
            pair[0] += d.good
            pair[1] += d.bad
    return [
        {"slo": slo, "grp": grp, "width": width, "start": start, "good": good, "bad": bad}
        for (slo, grp, width, start), (good, bad) in sorted(summed.items())
    ]


def _totals(conn: sa.Connection, since: Mapping[tuple[str, int], float]) -> list[Total]:
    if not since:
        return []
    c = slo_buckets.c
    recent = [
        sa.and_(c.slo == name, c.width == width, c.start >= start)
        for (name, width), start in since.items()
    ]
    rows = conn.execute(sa.select(slo_buckets).where(sa.or_(*recent)).order_by(c.start)).all()
    return [Total(r.slo, decode(r.grp), r.width, r.start, r.good, r.bad) for r in rows]
