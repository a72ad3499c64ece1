"""Which arm of a release serves a call: sticky by hashing, runs pinned, read by every replica.

The releases in force are refreshed from the store on every controller tick
(``Releases.update``). A call's arm is a hash of the release's name and the
call's sticky key -- its principal (with its key), or its agent run --
against the canary's weight: ``h < weight``. A weight only grows during a
release, so a principal that was on the canary stays there, and replicas
agree with no coordination. An agent run is pinned to the arm of its first
call (in the store, so every replica serves it the same way): a run never
switches arms, even when the weight moves under it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from governd.actions import Principal
from governd.config.releases import ReleaseConfig, Target

Arm = Literal["stable", "canary"]
#: Pins a run to an arm unless a replica pinned it first: (release, run, arm) -> the arm pinned.
Pin = Callable[[str, str, Arm], Awaitable[str]]
#: Phases in which a release splits traffic.
SPLITTING = ("running", "paused", "frozen")
_MAX_PINS = 100_000


@dataclass(frozen=True, slots=True)
class Live:
    """A release in force, as routing needs it."""

    config: ReleaseConfig
    phase: str
    weight: float
    epoch: int
    #: When its state last changed (the newest promotion of an alias is the one in force).
    updated_at: float


@dataclass(frozen=True, slots=True)
class Assignment:
    """The arm that serves a call, and what serves that arm."""

    release: str
    epoch: int
    arm: Arm
    target: Target
    #: A deployment the arm must not be served by (stable's: the canary's).
    avoid: str | None


class Releases:
    """The releases in force, by model alias."""

    def __init__(self, pin: Pin) -> None:
        self._pin = pin
        self._by_alias: dict[str, Live] = {}
        self._pinned: dict[tuple[str, str], Arm] = {}
        #: Whether any release is in force (the pipeline asks nothing otherwise).
        self.active = False

    def update(self, live: Iterable[Live]) -> None:
        """Put these releases in force (every other one out).

        One per alias: the one splitting its traffic, else the last promoted (a
        promoted canary serves every call until the config names it stable).
        """
        found: dict[str, Live] = {}
        for r in sorted(live, key=lambda r: (r.phase in SPLITTING, r.updated_at)):
            if r.phase in (*SPLITTING, "promoted"):
                found[r.config.model] = r
        self._by_alias = found
        self.active = bool(found)

    def get(self, alias: str) -> Live | None:
        """The release of ``alias`` in force, if any."""
        return self._by_alias.get(alias)

    async def assign(
        self, alias: str, principal: Principal, run_id: str | None
    ) -> Assignment | None:
        """The arm of a call to ``alias`` (None: no release of it is in force)."""
        live = self._by_alias.get(alias)
        if live is None:
            return None
        cfg = live.config
        if live.phase == "promoted":
            arm: Arm = "canary"
        else:
            key = run_id if cfg.sticky == "run" and run_id else _who(principal)
            arm = "canary" if share(cfg.name, key) < live.weight else "stable"
            if run_id:
                arm = await self._pinned_arm(cfg.name, run_id, arm)
        if arm == "canary":
            return Assignment(cfg.name, live.epoch, arm, cfg.canary, None)
        return Assignment(cfg.name, live.epoch, arm, cfg.stable, cfg.canary.deployment)

    async def _pinned_arm(self, release: str, run_id: str, arm: Arm) -> Arm:
        found = self._pinned.get((release, run_id))
        if found is None:
            if len(self._pinned) >= _MAX_PINS:
                self._pinned.clear()
            found = "canary" if await self._pin(release, run_id, arm) == "canary" else "stable"
            self._pinned[release, run_id] = found
        return found


def share(release: str, key: str) -> float:
    """Where ``key`` falls in [0, 100) for ``release``: the same on every replica, every time."""
    digest = hashlib.blake2b(f"{release}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def _who(principal: Principal) -> str:
    return f"{principal.path}/{principal.key_id or ''}"
