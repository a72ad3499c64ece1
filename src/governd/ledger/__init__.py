"""The ledger: one entry per action, its price, and the store that keeps entries and keys.

Exports ``LedgerEntry``, ``cost_usd``, ``Storage`` and ``LedgerWriter``. The
ledger imports neither governance nor execution: it records what they decided
and did, as plain data.
"""

from governd.ledger.entries import LedgerEntry
from governd.ledger.pricing import cost_usd
from governd.ledger.storage import Storage
from governd.ledger.writer import LedgerWriter

__all__ = ["LedgerEntry", "LedgerWriter", "Storage", "cost_usd"]
