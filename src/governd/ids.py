"""Ids unique across processes: a random per-process prefix and a counter.

Cheaper than drawing random bytes per id (a syscall each). Ids are not
secrets: only the admin API looks entries up by them.
"""

from __future__ import annotations

import itertools
import secrets

_PROCESS = secrets.token_hex(6)
_SEQ = itertools.count(1)


def new_id(prefix: str) -> str:
    """``<prefix><12 hex of this process><10 hex counter>``."""
    return f"{prefix}{_PROCESS}{next(_SEQ):010x}"
