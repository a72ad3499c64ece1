"""Error-budget policies: taken on their trigger, undone only past their hysteresis, replayable.

The SLO is ``governd.testing.slos``'s (error budget 0.1 over 1h, a page pair of
10m/1m with factor 3), grouped by deployment; one call a second.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from governd.clock import ManualClock
from governd.config.slo_policies import SloPolicy
from governd.controllers.slo_policies import PolicyBook, SloPolicies, Step
from governd.governance.overrides import Overrides
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.backtest import replay
from governd.ledger.slos.evaluator import SloEvaluator
from governd.ledger.slos.store import SloStore
from governd.ledger.storage import Storage
from governd.testing.slos import call_entry, slo_config

B = (("deployment", "b"),)


def policy(**fields: object) -> SloPolicy:
    return SloPolicy.model_validate({"do": "shift_route", "hold": 0, **fields})


def run(
    policies: list[SloPolicy],
    bad: range,
    seconds: int,
    evaluator: SloEvaluator | None = None,
    group_by: tuple[str, ...] = ("deployment",),
) -> list[Step]:
    """One call a second to model chat on deployment b, bad in ``bad``; the book stepped after
    every tick."""
    cfg = slo_config(group_by=list(group_by), policies=policies)
    ev = evaluator or SloEvaluator([cfg], 0)
    book = PolicyBook(ev, "acme")
    out = []
    for second in range(seconds):
        status = 500 if second in bad else 200
        ev.observe(call_entry(second + 0.5, status, deployment="b", model="chat"))
        ev.tick(second + 1)
        out += book.step(second + 1)
    return out


def moments(steps: list[Step]) -> list[tuple[str, float]]:
    return [(s.state, s.at) for s in steps]


def test_a_page_drains_the_burning_deployment_and_recovery_undoes_it() -> None:
    # The evaluator's own hand-counted page: fired at 1180, resolved at 1342.
    steps = run([policy(when="page")], bad=range(1000, 1300), seconds=1400)
    assert moments(steps) == [("taken", 1180), ("undone", 1342)]
    taken = steps[0]
    assert (taken.override.kind, taken.override.target) == ("shift_route", "b")
    assert taken.firing == ("page",) and taken.group == B
    assert "took shift_route (no new calls to deployment b) on page" in taken.summary()


@pytest.mark.parametrize(
    ("named", "group_by", "frozen"),
    [
        ({"model": "other"}, ("model",), "other"),  # the config's word wins
        ({}, ("model",), "chat"),  # the model that burns
        ({}, ("deployment",), ""),  # nothing names a model: every release
    ],
)
def test_a_freeze_holds_the_releases_of_the_model_it_names_or_that_burns(
    named: dict[str, str], group_by: tuple[str, ...], frozen: str
) -> None:
    freeze = policy(do="freeze_releases", when="page", **named)
    (taken, _) = run([freeze], bad=range(1000, 1300), seconds=1400, group_by=group_by)
    assert (taken.override.kind, taken.override.target) == ("freeze_releases", frozen)
    assert taken.override.describe() == (
        f"releases of {frozen} frozen" if frozen else "releases frozen"
    )


def test_an_action_holds_for_its_hold_even_after_its_trigger_clears() -> None:
    steps = run([policy(when="page", hold="10m")], bad=range(1000, 1300), seconds=1900)
    assert moments(steps) == [("taken", 1180), ("undone", 1180 + 600)]


def test_a_budget_trigger_is_undone_only_when_no_page_fires() -> None:
    # The budget left is 1 - (bad/total)/0.1 over the hour: below 60% once 4% of the calls
    # so far failed, at 1042 s (42 of 1042), before the page fires. It comes back above
    # 60% only as the bad calls leave the hour: at most 144 of 3600 from about 4756 s on,
    # long after the page cleared (1 m buckets: within a minute).
    low = policy(remaining_below=0.6, do="degrade", model="m", to="small")
    steps = run([low], bad=range(1000, 1300), seconds=4800)
    (taken, undone) = steps
    assert taken.state == "taken" and taken.firing == () and taken.at == 1042
    assert undone.state == "undone" and undone.firing == () and 4696 < undone.at <= 4760
    assert (taken.override.target, taken.override.value) == ("m", "small")


def test_a_ticket_action_waits_for_the_page_to_clear_too() -> None:
    cfg_alerts = [
        {"severity": "page", "long": 600, "short": 60, "budget_percent": 50},
        {"severity": "ticket", "long": 600, "short": 60, "budget_percent": 20},
    ]
    ev = SloEvaluator(
        [
            slo_config(
                group_by=["deployment"],
                alerts=cfg_alerts,
                policies=[policy(when="ticket", do="lower_priority", principal="ops", to="batch")],
            )
        ],
        0,
    )
    steps = run([], bad=range(1000, 1300), seconds=1500, evaluator=ev)
    (taken, undone) = steps
    assert taken.override.target == "acme/ops" and taken.override.value == "batch"
    # The ticket (factor 1.2) clears before the page (factor 3) does; the undo waits for both.
    page_resolved = 1342
    assert undone.at >= page_resolved and "page" not in undone.firing


def test_replaying_the_same_events_reproduces_the_same_actions() -> None:
    cfg = slo_config(group_by=["deployment"], policies=[policy(when="page")])
    events = [
        call_entry(s + 0.5, 500 if 1000 <= s < 1300 else 200, deployment="b") for s in range(1400)
    ]
    books: list[PolicyBook] = []

    def step(ev: SloEvaluator, now: float) -> list[Step]:
        if not books:
            books.append(PolicyBook(ev, "acme"))
        return books[0].step(now)

    found = [x for x in replay([cfg], events, step) if isinstance(x, Step)]
    assert moments(found) == [("taken", 1180), ("undone", 1342)]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"do": "shift_route", "when": "page"},
            "needs `deployment`, or the SLO grouped by deployment",
        ),
        ({"do": "degrade", "when": "page", "model": "m"}, "degrade needs `to`"),
        ({"do": "shift_route", "when": "ticket", "deployment": "a/x"}, "waits for a ticket alert"),
        ({"do": "shed", "model": "m"}, "exactly one of `when` or `remaining_below`"),
        ({"do": "tighten_tools", "when": "page"}, "tighten_tools needs `tier`"),
    ],
)
def test_a_policy_that_cannot_act_is_a_config_error(fields: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        slo_config(policies=[fields])


class Recorded:
    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    async def __call__(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)


async def test_replicas_put_the_same_overrides_in_force_and_record_each_change_once(
    tmp_path: Path,
) -> None:
    store = SloStore(Storage(f"sqlite:///{tmp_path / 'l.db'}").engine)
    cfg = slo_config(group_by=["deployment"], policies=[policy(when="page")])
    replicas = []
    for _ in range(2):
        ev = SloEvaluator([cfg], 0)
        overrides, recorded = Overrides(), Recorded()
        replicas.append(
            (
                ev,
                overrides,
                recorded,
                SloPolicies(PolicyBook(ev, "acme"), overrides, store, recorded),
            )
        )
    clock = ManualClock(start=0)
    for second in range(1400):
        clock.advance(1)
        for ev, _, _, policies in replicas:
            ev.observe(
                call_entry(second + 0.5, 500 if 1000 <= second < 1300 else 200, deployment="b")
            )
            ev.tick(clock.now())
            await policies.reconcile(clock.now())
        if second + 1 == 1200:
            assert [o.drained for _, o, _, _ in replicas] == [{"b"}, {"b"}]
    assert [o.drained for _, o, _, _ in replicas] == [set(), set()]
    entries = [e for _, _, r, _ in replicas for e in r.entries]
    assert sorted(e.operation for e in entries) == ["slo_action", "slo_undone"]
    signals = [orjson.loads(e.signals or "") for e in entries]
    assert {s["action"] for s in signals} == {"shift_route"}

    # A restarted replica puts the action back in force from the store and the ledger.
    ev, overrides, _, policies = replicas[0]
    taken = next(s for s in signals if s["state"] == "taken")
    fresh = Overrides()
    again = SloPolicies(PolicyBook(ev, "acme"), fresh, store, Recorded())
    again.restore(
        [{"slo": "avail", "group": B, "severity": "policy:0", "firing": True, "since": 1180}],
        [taken],
    )
    assert fresh.drained == {"b"}
