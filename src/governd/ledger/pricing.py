"""Turns usage into USD with a deployment's prices (USD per million tokens)."""

from __future__ import annotations

from governd.actions import Usage
from governd.config import Pricing


def cost_usd(usage: Usage, price: Pricing) -> float:
    """Cost of ``usage``: uncached input, cached input (priced on its own) and output."""
    cached = min(usage.cached_tokens, usage.input_tokens)
    cached_price = price.input if price.cached_input is None else price.cached_input
    micro = (
        (usage.input_tokens - cached) * price.input
        + cached * cached_price
        + usage.output_tokens * price.output
    )
    return round(micro / 1_000_000, 10)
