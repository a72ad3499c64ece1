"""The job scheduler's lease: of all replicas on one database, one schedules and runs jobs.

Every replica ticks (``TICK_S``); each tick takes or renews the lease
``jobs.scheduler`` for ``LEASE_S``. The holder schedules; the others only
queue what they are given and leave requests (cancels) for it. A holder
that dies loses the lease when it expires, and the next tick of another
replica takes it: a ``kill -9`` moves scheduling within ``LEASE_S + TICK_S``.
A holder that cannot renew (its database is down, it was paused) counts
itself out as its lease runs out, before another may take it.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from governd.clock import Clock
from governd.errors import GovernError
from governd.ids import new_id
from governd.ledger.leases import Fence, Leases

log = logging.getLogger("governd.jobs")

LEASE = "jobs.scheduler"
#: How often a replica renews the lease or tries to take it (and the leader looks for work).
TICK_S = 1.0
#: How long the lease outlives its last renewal: a dead scheduler's successor waits this long.
LEASE_S = 5.0


class Leadership:
    """This replica's claim on the scheduler's lease."""

    def __init__(self, leases: Leases, clock: Clock, lease_s: float = LEASE_S) -> None:
        self._leases = leases
        self._clock = clock
        self._lease_s = lease_s
        self.me = new_id("sched_")
        self._until = 0.0  # when the lease runs out unless renewed (by this replica's clock)

    @property
    def leading(self) -> bool:
        """Whether this replica holds the lease now (by its own clock: paused, it knows it lost)."""
        return self._clock.now() < self._until

    async def renew(self) -> bool:
        """Take or renew the lease; whether this replica leads now."""
        now = self._clock.now()
        try:
            taken = await asyncio.to_thread(self._leases.take, LEASE, self.me, self._lease_s, now)
        except (GovernError, SQLAlchemyError) as exc:
            if self.leading:
                log.warning("cannot renew the scheduler lease: %s", exc)
            return self.leading
        self._until = now + self._lease_s if taken else 0.0
        return taken

    def lost(self) -> None:
        """Another replica holds the lease now: stop counting on it."""
        self._until = 0.0

    def fence(self) -> Fence:
        """The claim a write made now under this lease carries."""
        return Fence(LEASE, self.me, self._clock.now())

    async def give_up(self) -> None:
        """Let another replica take over at once (a clean stop)."""
        if self.leading:
            self._until = 0.0
            try:
                await asyncio.to_thread(self._leases.give_up, LEASE, self.me)
            except (GovernError, SQLAlchemyError) as exc:
                log.warning("cannot give up the scheduler lease (it expires by itself): %s", exc)
