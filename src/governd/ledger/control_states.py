"""What controllers have on, shared by replicas: one row per scope, group and state name.

A controller turns a state on or off with ``claim``, a compare-and-set: of
all the replicas that judge the same change, exactly one flips the row, and
that one records the change in the ledger. A restarted replica reads what
is on from ``all``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from governd.ledger.tables import control_states


@dataclass(frozen=True, slots=True)
class ControlState:
    """One row: a state of a scope's group (``slo:NAME``, its group, ``page``), on or off."""

    scope: str
    group: str
    name: str
    active: bool
    since: float


class ControlStates:
    """The ``control_states`` table of one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # RETURNING says whether the row went in (psycopg reports no rowcount for it).
        self._new = insert(control_states).on_conflict_do_nothing().returning(control_states.c.name)

    def claim(self, scope: str, group: str, name: str, on: bool, at: float) -> bool:
        """Turn a state on or off; True for the one caller that flipped it."""
        c = control_states.c
        with self._engine.begin() as conn:
            flipped = conn.execute(
                control_states.update()
                .where(c.scope == scope, c.grp == group, c.name == name, c.active != on)
                .values(active=on, since=at)
            )
            if flipped.rowcount == 1 or not on:
                return flipped.rowcount == 1
            row = {"scope": scope, "grp": group, "name": name, "active": True, "since": at}
            return conn.execute(self._new, row).first() is not None

    def all(self, prefix: str = "") -> list[ControlState]:
        """Every state whose scope starts with ``prefix``, in key order."""
        c = control_states.c
        q = sa.select(control_states).where(c.scope.startswith(prefix, autoescape=True))
        with self._engine.connect() as conn:
            rows = conn.execute(q.order_by(*control_states.primary_key)).all()
        return [ControlState(r.scope, r.grp, r.name, r.active, r.since) for r in rows]
