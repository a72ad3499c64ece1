"""Which arm serves a call: sticky by hashing, growing with the weight, runs pinned once."""

from __future__ import annotations

import pytest

from governd.actions import Principal
from governd.config.releases import ReleaseConfig
from governd.governance.releases import Live, Releases, share

CFG = ReleaseConfig.model_validate(
    {"name": "r", "model": "chat", "canary": {"deployment": "b/b"}, "steps": [{"set_weight": 10}]}
)
RUNS = CFG.model_copy(update={"sticky": "run"})
KEYS = [Principal("acme", "t", None, f"key_{i}") for i in range(400)]


class Pins:
    """The store's pins, as a dict: the first arm asked for wins."""

    def __init__(self) -> None:
        self.arms: dict[tuple[str, str], str] = {}
        self.asked = 0

    async def __call__(self, release: str, run: str, arm: str) -> str:
        self.asked += 1
        return self.arms.setdefault((release, run), arm)


def live(weight: float, phase: str = "running", cfg: ReleaseConfig = CFG, at: float = 0.0) -> Live:
    return Live(cfg, phase, weight, 0, at)


async def arms(releases: Releases, run: str | None = None) -> list[str]:
    out = []
    for key in KEYS:
        found = await releases.assign("chat", key, run)
        out.append(found.arm if found else "none")
    return out


def test_shares_are_stable_and_spread() -> None:
    values = [share("r", f"k{i}") for i in range(4000)]
    assert values == [share("r", f"k{i}") for i in range(4000)]
    assert all(0 <= v < 100 for v in values)
    assert abs(sum(v < 30 for v in values) / 4000 - 0.3) < 0.03
    assert share("r", "k1") != share("other", "k1"), "each release draws its own split"


async def test_the_weight_splits_principals_and_a_canary_principal_stays_as_it_grows() -> None:
    releases = Releases(Pins())
    releases.update([live(30)])
    at_30 = await arms(releases)
    assert abs(at_30.count("canary") / len(KEYS) - 0.3) < 0.08
    releases.update([live(80)])
    at_80 = await arms(releases)
    assert all(b == "canary" for a, b in zip(at_30, at_80, strict=True) if a == "canary")
    stable = await releases.assign("chat", KEYS[0], None)
    canary = next(k for k, a in zip(KEYS, at_80, strict=True) if a == "canary")
    on_canary = await releases.assign("chat", canary, None)
    assert (
        on_canary is not None and on_canary.target.deployment == "b/b" and on_canary.avoid is None
    )
    if stable is not None and stable.arm == "stable":
        assert stable.avoid == "b/b" and stable.target.deployment is None


@pytest.mark.parametrize(
    ("phase", "weight", "arm"),
    [("promoted", 100, "canary"), ("running", 0, "stable"), ("running", 100, "canary")],
)
async def test_ends_of_the_split(phase: str, weight: float, arm: str) -> None:
    releases = Releases(Pins())
    releases.update([live(weight, phase)])
    assert set(await arms(releases)) == {arm}


@pytest.mark.parametrize("phase", ["created", "aborted"])
async def test_a_release_not_in_force_routes_nothing(phase: str) -> None:
    releases = Releases(Pins())
    releases.update([live(50, phase)])
    assert not releases.active and set(await arms(releases)) == {"none"}


async def test_a_run_keeps_the_arm_of_its_first_call() -> None:
    pins = Pins()
    releases = Releases(pins)
    releases.update([live(10, cfg=RUNS)])
    first = {
        run: (await releases.assign("chat", KEYS[0], run)).arm
        for run in (f"run-{i}" for i in range(200))
    }  # type: ignore[union-attr]
    releases.update([live(90, cfg=RUNS)])
    later = {run: (await releases.assign("chat", KEYS[1], run)).arm for run in first}  # type: ignore[union-attr]
    assert later == first and pins.asked == 200, "pinned once each, then read locally"
    assert list(first.values()).count("canary") < 50


async def test_a_splitting_release_wins_over_a_promoted_one_and_the_newest_promotion_wins() -> None:
    other = CFG.model_copy(
        update={"name": "s", "canary": CFG.canary.model_copy(update={"deployment": "c/c"})}
    )
    releases = Releases(Pins())
    releases.update([live(100, "promoted", CFG, at=5.0), live(0, "running", other, at=1.0)])
    found = releases.get("chat")
    assert found is not None and found.config.name == "s"
    releases.update([live(100, "promoted", CFG, at=5.0), live(100, "promoted", other, at=9.0)])
    found = releases.get("chat")
    assert found is not None and found.config.name == "s"
