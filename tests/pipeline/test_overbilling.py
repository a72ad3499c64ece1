"""An upstream's bill past the bound its call was given: found, priced, never on counted usage."""

from __future__ import annotations

import pytest

from governd.actions import Action, Principal, Usage
from governd.config import Pricing
from governd.pipeline.overbilling import output_bound, overbilled

PRICE = Pricing(input=1.0, output=2.0)


def action(**body: object) -> Action:
    return Action("req_1", "chat", Principal("acme", "t"), "m", {"messages": [], **body})


@pytest.mark.parametrize(
    ("body", "cap", "bound"),
    [
        ({}, None, None),  # nothing bounded the reply: nothing to breach
        ({"max_tokens": 16}, None, 16),
        ({"max_completion_tokens": 20, "max_tokens": 99}, None, 20),
        ({"max_tokens": 16}, 8, 8),  # governd's cap is what the upstream was sent
        ({"max_tokens": 16, "n": 3}, None, 48),
        ({"max_tokens": "16"}, None, None),
    ],
)
def test_the_bound_is_what_the_upstream_was_sent_times_the_choices(
    body: dict[str, object], cap: int | None, bound: int | None
) -> None:
    assert output_bound(action(**body), cap) == bound


def test_a_reported_count_past_the_bound_is_a_breach_with_its_overage() -> None:
    usage = Usage(10, 0, 100_000, "upstream")
    found = overbilled(action(max_tokens=16), None, "up/m", PRICE, usage)
    assert found is not None and found.overage_tokens == 99_984
    assert found.overage_usd == pytest.approx(99_984 * 2.0 / 1e6)
    assert "up/m reported 100,000 output tokens for a bound of 16" in found.summary()


@pytest.mark.parametrize("usage", [Usage(10, 0, 16, "upstream"), Usage(10, 0, 100_000, "counted")])
def test_within_the_bound_or_counted_by_governd_is_no_breach(usage: Usage) -> None:
    assert overbilled(action(max_tokens=16), None, "up/m", PRICE, usage) is None
