"""The SLO evaluator against windows counted by hand: onsets, steady burns, blips, silence, recovery.

The SLO of these tests is ``governd.testing.slos``'s: error budget 0.1 over 1h, a
page pair of 10m/1m whose factor is 3.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.evaluator import SloEvaluator, Transition
from governd.testing.slos import call_entry as entry
from governd.testing.slos import slo_config as slo


def run(evaluator: SloEvaluator, start: int, end: int, bad: range) -> list[Transition]:
    """One call a second at s + 0.5 for s in [start, end), bad for s in ``bad``; a tick a second."""
    out = []
    for second in range(start, end):
        evaluator.observe(entry(second + 0.5, 500 if second in bad else 200))
        out += evaluator.tick(second + 1)
    return out


def test_a_step_onset_pages_when_the_long_window_crosses_the_factor_and_resolves_on_recovery() -> (
    None
):
    ev = SloEvaluator([slo()], 0)
    out = run(ev, 0, 1400, bad=range(1000, 1300))
    assert [(t.severity, t.state, t.at) for t in out] == [
        ("page", "fired", 1180),  # hand count below
        ("page", "resolved", 1342),
    ]
    # At 1180 the 10m window holds buckets 60..118 and the current one: 590 calls, 180 of them
    # bad, a burn of 180/590/0.1 = 3.05 > 3 (at 1179: 179 of 599, 2.99). 180 bad calls are half
    # of the 360 the budget allows in the hour: factor * long / window of it, as it should be.
    fired = out[0]
    assert [(w.window, w.good, w.bad) for w in fired.windows] == [(60, 0, 59), (600, 410, 180)]
    # At 1342 the minute holds 59 calls (1283..1341), 17 of them bad: a burn of 2.88 <= 3.
    assert next((w.window, w.good, w.bad) for w in out[1].windows) == (60, 42, 17)


def test_a_short_blip_does_not_page() -> None:
    out = run(SloEvaluator([slo()], 0), 0, 1400, bad=range(1000, 1040))
    assert out == []  # the minute burns at 10, but the 10m window at most 40/600/0.1 = 0.67


def steady(bad_per_100: int) -> list[Transition]:
    ev = SloEvaluator([slo()], 0)
    out = []
    for second in range(1200):
        ev.add("avail", second + 0.5, 100 - bad_per_100, bad_per_100)
        out += ev.tick(second + 1)
    return out


def test_a_steady_burn_just_above_the_factor_pages_and_just_below_does_not() -> None:
    above = steady(31)  # burn 3.1
    assert [(t.severity, t.state) for t in above] == [("page", "fired")]
    assert above[0].at == 1  # both windows burn at 3.1 from the first second
    assert steady(30) == []  # burn 3.0 is not above the factor
    assert steady(29) == []


def test_no_traffic_is_its_own_alert_and_the_next_call_resolves_it() -> None:
    ev = SloEvaluator([slo(no_data=120)], 0)
    assert ev.tick(119) == []
    fired = ev.tick(120)
    assert [(t.severity, t.state) for t in fired] == [("no_data", "fired")]
    ev.observe(entry(130))
    assert [(t.severity, t.state) for t in ev.tick(131)] == [("no_data", "resolved")]


def test_groups_are_judged_apart() -> None:
    ev = SloEvaluator([slo(group_by=["deployment"])], 0)
    out = []
    for second in range(1300):
        ev.observe(entry(second + 0.5, 200, deployment="a"))
        ev.observe(entry(second + 0.5, 500 if second >= 1000 else 200, deployment="b"))
        out += ev.tick(second + 1)
    assert [(t.group, t.state) for t in out] == [((("deployment", "b"),), "fired")]
    assert [s.group for s in ev.status("avail")] == [(("deployment", "a"),), (("deployment", "b"),)]
    assert [s.firing for s in ev.status("avail")] == [(), ("page",)]


def test_entries_the_indicator_does_not_select_count_nowhere() -> None:
    latency = slo(sli="latency", threshold=500, filter='entry.model == "m"')
    ev = SloEvaluator([latency], 0)
    ev.observe(entry(1, 200, model="m", latency_ms=900))  # bad
    ev.observe(entry(1, 200, model="m", latency_ms=100))  # good
    ev.observe(entry(1, 200, model="other", latency_ms=900))  # another model
    ev.observe(entry(1, 503, model="m", latency_ms=900))  # failed calls are not slow
    ev.observe(LedgerEntry(id="t", ts=1, kind="tool_call", operation="call", principal="acme"))
    ev.tick(2)
    (status,) = ev.status("avail")
    assert next((w.window, w.good, w.bad) for w in status.windows) == (60, 1, 1)


@settings(max_examples=60, deadline=None)
@given(bad_percent=st.integers(31, 100), onset=st.integers(700, 2000))
def test_a_page_fires_once_factor_times_long_over_window_of_the_budget_is_spent(
    bad_percent: int, onset: int
) -> None:
    """At the onset of a steady burn b >= factor, the page fires once 0.5 of the budget is gone.

    Within one bucket of the long window (10 s of 600: the window holds 590 to 600 s).
    """
    ev = SloEvaluator([slo()], 0)
    fired_at = None
    bad_seen = 0
    for second in range(onset + 700):
        bad = 0 if second < onset else bad_percent
        ev.add("avail", second + 0.5, 100 - bad, bad)
        bad_seen += bad
        if any(t.state == "fired" for t in ev.tick(second + 1)):
            fired_at = second + 1
            break
    assert fired_at is not None
    spent = bad_seen / (0.1 * 100 * 3600)  # of the hour's budget at this rate of calls
    assert 0.5 * 590 / 600 < spent <= 0.5 + bad_percent / (0.1 * 100 * 3600)


def test_values_beyond_max_groups_count_together_in_other() -> None:
    ev = SloEvaluator([slo(group_by=["deployment"], max_groups=3)], 0)
    for name in ("a", "b", "c", "d", "e"):
        ev.observe(entry(1, 500 if name in "de" else 200, deployment=name))
    ev.tick(2)
    groups = {dict(s.group)["deployment"]: s.windows[0] for s in ev.status("avail")}
    assert sorted(groups) == ["(other)", "a", "b", "c"]
    assert (groups["(other)"].good, groups["(other)"].bad) == (0, 2)  # d and e
