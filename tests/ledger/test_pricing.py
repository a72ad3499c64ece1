"""Pricing: cached input has its own price; the result is USD."""

from __future__ import annotations

import pytest

from governd.actions import Usage
from governd.config import Pricing
from governd.ledger import cost_usd


@pytest.mark.parametrize(
    ("usage", "price", "usd"),
    [
        (Usage(1_000_000, 0, 0), Pricing(input=2.0, output=8.0), 2.0),
        (Usage(0, 0, 500_000), Pricing(input=2.0, output=8.0), 4.0),
        (
            Usage(1_000_000, 400_000, 0),
            Pricing(input=2.0, cached_input=0.5, output=8.0),
            0.6 * 2.0 + 0.4 * 0.5,
        ),
        (Usage(1_000_000, 400_000, 0), Pricing(input=2.0, output=8.0), 2.0),
        (Usage(10, 50, 0), Pricing(input=1.0, cached_input=0.0), 0.0),
        (Usage(0, 0, 0), Pricing(input=1.0, output=1.0), 0.0),
    ],
    ids=[
        "input",
        "output",
        "cached-priced",
        "cached-defaults-to-input",
        "cached-capped-at-input",
        "nothing",
    ],
)
def test_cost(usage: Usage, price: Pricing, usd: float) -> None:
    assert cost_usd(usage, price) == pytest.approx(usd)
