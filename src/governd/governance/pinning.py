"""Tool pinning: a tool's name, description and input schema are fixed when first trusted.

If a server later changes any of them (a "rug pull": the tool a human
approved is no longer the tool being called), the tool is quarantined until
an admin approves the new version. Descriptions are also scanned, on first
sight, for text that tries to instruct the model; a hit quarantines too.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from governd.clock import Clock
from governd.errors import NotFound
from governd.governance.risk import injection


def tool_digest(name: str, description: str | None, input_schema: Any) -> str:
    """SHA-256 over what a client sees of a tool (canonical JSON)."""
    data = orjson.dumps([name, description or "", input_schema], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


class PinStore(Protocol):
    """Where pins live (``governd.ledger.Storage``)."""

    def tool_pins(self) -> dict[str, dict[str, Any]]: ...
    def put_tool_pin(self, row: dict[str, Any]) -> None: ...


Record = Callable[[str, str, str], Awaitable[str]]


class ToolPins:
    """The trusted version of every tool; checks each listing against it."""

    def __init__(
        self, store: PinStore, clock: Clock, configured: dict[str, str], record: Record
    ) -> None:
        self._store = store
        self._clock = clock
        self._configured = configured
        self._record = record
        self._pins: dict[str, dict[str, Any]] | None = None

    async def check(self, name: str, digest: str, description: str | None) -> str | None:
        """None when the tool may be used; else why it is quarantined."""
        if self._pins is None:
            self._pins = await asyncio.to_thread(self._store.tool_pins)
        pin = self._pins.get(name)
        if pin is None:
            wanted = self._configured.get(name)
            hit = injection(description)
            if wanted is not None and wanted != digest:
                return await self._set(
                    name, wanted, digest, "quarantined", "does not match its configured pin"
                )
            if hit is not None:
                return await self._set(
                    name,
                    digest,
                    digest,
                    "quarantined",
                    f"description looks like an instruction injection: {hit!r}",
                )
            await self._set(name, digest, digest, "pinned", "first seen")
            return None
        if pin["status"] == "pinned":
            if pin["digest"] == digest:
                return None
            return await self._set(
                name, pin["digest"], digest, "quarantined", "changed since it was pinned"
            )
        if pin["seen_digest"] != digest:
            await self._set(name, pin["digest"], digest, "quarantined", pin["reason"])
        return str(pin["reason"])

    async def approve(self, name: str, by: str) -> dict[str, Any]:
        """Trust the version of a tool last seen; it is listed and callable again."""
        if self._pins is None:
            self._pins = await asyncio.to_thread(self._store.tool_pins)
        pin = self._pins.get(name)
        if pin is None:
            raise NotFound(f"no tool {name!r} has been seen", param="name")
        await self._set(
            name, pin["seen_digest"], pin["seen_digest"], "pinned", f"approved by {by}", by
        )
        return self._pins[name]

    def pins(self) -> dict[str, dict[str, Any]]:
        """What is known so far."""
        return dict(self._pins or {})

    async def _set(
        self, name: str, digest: str, seen: str, status: str, reason: str, by: str | None = None
    ) -> str:
        row = {
            "tool": name,
            "digest": digest,
            "status": status,
            "seen_digest": seen,
            "reason": reason,
            "updated_at": self._clock.now(),
            "updated_by": by,
        }
        await asyncio.to_thread(self._store.put_tool_pin, row)
        assert self._pins is not None
        self._pins[name] = row
        await self._record(
            f"tool_{status}", name, f"{name} {status}: {reason} (digest {seen[:16]})"
        )
        return reason
