"""Names by reference: each principal, key, model and deployment stored once in ``ledger_names``.

An entry refers to its names by integer id, so a row carries no repeated
text. Ids are resolved inside the append transaction (which holds the
ledger's write lock, so writers never race on a name) and cached once that
transaction commits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from governd.ledger.entries import FIELDS, LedgerEntry

#: Entry field -> (kind of name it refers to, the column that holds the reference).
REFS: dict[str, tuple[str, str]] = {
    "principal": ("principal", "principal_ref"),
    "key_id": ("key", "key_ref"),
    "model": ("model", "model_ref"),
    "served_model": ("model", "served_model_ref"),
    "deployment": ("deployment", "deployment_ref"),
}
#: Columns an append writes: the entry's fields, one reference per name field, the chain hash.
COLUMNS = (*FIELDS, *(column for _, column in REFS.values()), "chain_hash")
_POSITIONS = [(FIELDS.index(f), kind) for f, (kind, _) in REFS.items()]
_PRINCIPAL = FIELDS.index("principal")


class NameIds:
    """``(kind, name) -> id``, cached across appends of one process."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def rows(
        self, cur: Any, mark: str, batch: Iterable[LedgerEntry], hashes: Iterable[str]
    ) -> tuple[list[tuple[Any, ...]], dict[tuple[str, str], int]]:
        """Insert rows for ``batch`` (names replaced by ids) and the ids new to this process."""
        values = [list(e.as_tuple()) for e in batch]
        wanted = {(kind, v[pos]) for v in values for pos, kind in _POSITIONS if v[pos]}
        with self._lock:
            known = {k: self._ids[k] for k in wanted if k in self._ids}
        new = {k: _resolve(cur, mark, *k) for k in wanted - known.keys()}
        ids = {**known, **new}
        out = []
        for row, chain_hash in zip(values, hashes, strict=True):
            refs = []
            for pos, kind in _POSITIONS:
                name = row[pos]
                refs.append(ids[(kind, name)] if name else None)
                row[pos] = "" if pos == _PRINCIPAL else None
            out.append((*row, *refs, chain_hash))
        return out, new

    def remember(self, new: dict[tuple[str, str], int]) -> None:
        """Cache ids once the transaction that made them committed."""
        with self._lock:
            self._ids.update(new)


def _resolve(cur: Any, m: str, kind: str, name: str) -> int:
    cur.execute(
        f"INSERT INTO ledger_names (kind, name) SELECT {m}, {m} "
        f"WHERE NOT EXISTS (SELECT 1 FROM ledger_names WHERE kind = {m} AND name = {m})",
        (kind, name, kind, name),
    )
    cur.execute(f"SELECT id FROM ledger_names WHERE kind = {m} AND name = {m}", (kind, name))
    return int(cur.fetchone()[0])
