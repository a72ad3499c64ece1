"""Leases: a role only one replica may play at a time (the job scheduler), held while renewed.

A replica takes a lease that is free or expired, and keeps it by renewing it
well before it expires; one that dies (``kill -9``) or stops answering loses
it when it expires, and another takes it. Writes made under a lease are
*fenced*: ``held`` runs in the writing transaction and locks the lease's row
(PostgreSQL; SQLite serialises writers anyway), so a replica that lost its
lease cannot write after its successor took it. Expiry compares the
replicas' clocks: they must agree to well within a lease's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from governd.errors import LeaseLost
from governd.ledger.tables import leases


@dataclass(frozen=True, slots=True)
class Fence:
    """A write's claim to be made under ``holder``'s lease ``name`` at ``now``."""

    name: str
    holder: str
    now: float


def held(conn: Connection, fence: Fence) -> None:
    """Within a transaction: ``LeaseLost`` unless the fence's lease is still its holder's."""
    c = leases.c
    still = conn.execute(
        leases.update()
        .where(c.name == fence.name, c.holder == fence.holder, c.expires_at > fence.now)
        .values(holder=fence.holder)
    )
    if still.rowcount != 1:
        raise LeaseLost(f"lease {fence.name} is no longer held by {fence.holder}")


class Leases:
    """The ``leases`` table of one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._new = insert(leases).on_conflict_do_nothing().returning(leases.c.name)

    def take(self, name: str, holder: str, ttl_s: float, now: float) -> bool:
        """Take or renew lease ``name`` until ``now + ttl_s``; False while another holds it."""
        c = leases.c
        until = now + ttl_s
        with self._engine.begin() as conn:
            taken = conn.execute(
                leases.update()
                .where(c.name == name, sa.or_(c.holder == holder, c.expires_at <= now))
                .values(holder=holder, expires_at=until)
            )
            if taken.rowcount == 1:
                return True
            row = {"name": name, "holder": holder, "expires_at": until}
            return conn.execute(self._new, row).first() is not None

    def give_up(self, name: str, holder: str) -> None:
        """Let the lease go now (a clean stop), so another replica need not wait for it to expire."""
        c = leases.c
        with self._engine.begin() as conn:
            conn.execute(
                leases.update().where(c.name == name, c.holder == holder).values(expires_at=0.0)
            )

    def holder(self, name: str, now: float) -> str | None:
        """Who holds ``name`` now, if anyone."""
        c = leases.c
        q = sa.select(c.holder).where(c.name == name, c.expires_at > now)
        with self._engine.connect() as conn:
            return conn.execute(q).scalar()
