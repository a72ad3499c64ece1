"""What the ledger knows about runs: totals to resume from, and the list of runs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from governd.ledger import Storage
from tests.ledger.test_storage import BASE

RISKY = '{"risk": {"events": ["denied"], "points": 1.5}}'
ENTRIES = [
    replace(BASE, id="m1", ts=100.0, run_id="r1", cost_usd=0.25),
    replace(BASE, id="t1", ts=101.0, run_id="r1", kind="tool_call", cost_usd=0.0, signals=RISKY),
    replace(BASE, id="t2", ts=102.0, run_id="r1", kind="tool_call", decision="deny", signals=RISKY),
    replace(BASE, id="o1", ts=103.0, run_id="r1", principal="acme/other", cost_usd=1.0),
    replace(BASE, id="m2", ts=200.0, run_id="r2", cost_usd=0.5),
    replace(BASE, id="x1", ts=300.0),
]


@pytest.fixture
def storage(storage_url: str) -> Storage:
    found = Storage(storage_url)
    found.append(ENTRIES)
    return found


def test_run_totals_count_admitted_actions_cost_and_risk(storage: Storage) -> None:
    totals = storage.run_totals("acme/t/p", "r1")
    assert totals == {
        "started": 100.0,
        "steps": 2,
        "tool_calls": 1,
        "spent_usd": pytest.approx(0.251),
        "risk": 3.0,
    }
    assert storage.run_totals("acme/t/p", "nope") is None


def test_runs_newest_first_per_principal(storage: Storage) -> None:
    found = [(r["run"], r["principal"], r["entries"], r["refused"]) for r in storage.runs()]
    assert found == [("r2", "acme/t/p", 1, 0), ("r1", "acme/other", 1, 0), ("r1", "acme/t/p", 3, 1)]
    assert [r["principal"] for r in storage.runs("acme/other")] == ["acme/other"]
    assert len(storage.runs(limit=1)) == 1
