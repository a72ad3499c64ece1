"""Approvals: a call that a policy says needs one waits until a human decides, or times out.

The request is stored, so any replica's admin API can answer it; the waiting
call wakes at once when the decision is made on its own replica and within
``poll_s`` when it is made on another. An approval not decided within the
timeout expires, and the call is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from governd.actions import Action
from governd.clock import Clock
from governd.errors import InvalidRequest, NotFound
from governd.ids import new_id

Status = Literal["pending", "approved", "denied", "expired"]


class ApprovalStore(Protocol):
    """Where approvals live (``governd.ledger.Storage``)."""

    def add_approval(self, row: dict[str, Any]) -> None: ...
    def approval(self, approval_id: str) -> dict[str, Any] | None: ...
    def decide_approval(self, approval_id: str, status: str, by: str | None, at: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class Ask:
    """What a human is asked to approve: a tool call, a release's start."""

    #: The tool, or ``release:NAME``.
    subject: str
    tier: str
    #: The policy (or gate) that asks.
    policy: str
    details: dict[str, Any]
    principal: str
    key_id: str | None = None
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """How an approval ended."""

    id: str
    status: Status
    by: str | None


class Approvals:
    """Holds calls for approval and settles approvals."""

    def __init__(
        self, store: ApprovalStore, clock: Clock, timeout_s: float, poll_s: float = 0.5
    ) -> None:
        self._store = store
        self._clock = clock
        self._timeout = timeout_s
        self._poll = poll_s
        self._events: dict[str, asyncio.Event] = {}

    async def hold(self, action: Action, tier: str, policy: str) -> Verdict:
        """Ask for approval of ``action`` and wait for the verdict."""
        return await self.wait(await self.request(action, tier, policy))

    async def request(self, action: Action, tier: str, policy: str) -> str:
        """Store a pending approval of ``action`` (``tier``: what kind of action); its id."""
        who = action.principal
        return await self.ask(
            Ask(action.model, tier, policy, action.body, who.path, who.key_id, action.run_id)
        )

    async def ask(self, ask: Ask, timeout_s: float | None = None) -> str:
        """Store a pending approval of what ``ask`` describes; its id."""
        approval_id = new_id("apr_")
        now = self._clock.now()
        row = {
            "id": approval_id,
            "created_at": now,
            "expires_at": now + (timeout_s or self._timeout),
            "principal": ask.principal,
            "key_id": ask.key_id,
            "run_id": ask.run_id,
            "tool": ask.subject,
            "tier": ask.tier,
            "arguments": orjson.dumps(ask.details).decode(),
            "policy": ask.policy,
            "status": "pending",
            "decided_by": None,
            "decided_at": None,
        }
        await asyncio.to_thread(self._store.add_approval, row)
        return approval_id

    async def status(self, approval_id: str) -> Verdict | None:
        """How an approval stands now (None: no such approval)."""
        row = await asyncio.to_thread(self._store.approval, approval_id)
        if row is None:
            return None
        return Verdict(approval_id, row["status"], row["decided_by"])

    async def wait(self, approval_id: str) -> Verdict:
        """The verdict on an approval, once given (or once it expires)."""
        event = self._events.setdefault(approval_id, asyncio.Event())
        try:
            return await self._wait(approval_id, event)
        finally:
            self._events.pop(approval_id, None)

    async def _wait(self, approval_id: str, event: asyncio.Event) -> Verdict:
        row = await asyncio.to_thread(self._store.approval, approval_id)
        expires = row["expires_at"] if row is not None else self._clock.now()
        deadline = self._clock.monotonic() + max(0.0, expires - self._clock.now())
        while True:
            row = await asyncio.to_thread(self._store.approval, approval_id)
            if row is not None and row["status"] != "pending":
                return Verdict(approval_id, row["status"], row["decided_by"])
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                expired = await asyncio.to_thread(
                    self._store.decide_approval, approval_id, "expired", None, self._clock.now()
                )
                if expired:
                    return Verdict(approval_id, "expired", None)
                continue  # decided at the last moment: read it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, self._poll))
            event.clear()

    async def decide(self, approval_id: str, approve: bool, by: str) -> dict[str, Any]:
        """Approve or deny a pending approval; the held call resumes."""
        status = "approved" if approve else "denied"
        done = await asyncio.to_thread(
            self._store.decide_approval, approval_id, status, by, self._clock.now()
        )
        row = await asyncio.to_thread(self._store.approval, approval_id)
        if row is None:
            raise NotFound(f"no approval {approval_id!r}", param="id")
        if not done:
            raise InvalidRequest(f"approval {approval_id} is already {row['status']}", param="id")
        event = self._events.get(approval_id)
        if event is not None:
            event.set()
        return row
