"""Hashing of ledger entries: a canonical form, the hash chain, RFC 6962 Merkle trees.

Canonical form: the entry's fields as a JSON array in a fixed order, prefixed
with a version tag, each field coerced to its declared type (so a value that
went through SQLite or PostgreSQL serialises to the same bytes). An entry
without ``signals`` keeps the v1 form (the fields before it), so entries
written before the field existed verify unchanged; one with signals is v2. An array in
a fixed order needs no key sorting, which is what RFC 8785 exists to pin down;
orjson's number formatting is the shortest round-trip form, stable for a given
float.

Chain: ``chain[i] = SHA-256(chain[i-1] || leaf[i])`` with ``chain[-1]`` all
zeros and ``leaf[i] = SHA-256(0x00 || canonical(entry[i]))`` (RFC 6962 leaf
hash). Any edited, inserted, deleted or reordered entry breaks every link from
it on.

Merkle tree heads follow RFC 6962 section 2.1; ``Frontier`` keeps the roots of
the perfect subtrees so a head costs O(log n) per appended leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from governd.ledger.entries import FIELDS, FIELDS_V1, LedgerEntry

VERSION = "governd.entry.v1"
VERSION_2 = "governd.entry.v2"
#: SHA-256: every leaf, node and link of the ledger is this long.
HASH_BYTES = 32
ZERO = bytes(HASH_BYTES)

_FLOATS = {"ts", "latency_ms", "ttft_ms", "cost_usd"}
_INTS = {"status", "attempts", "input_tokens", "cached_tokens", "output_tokens"}


def _typed(fields: Sequence[str]) -> list[tuple[int, type]]:
    """(position, type) of each field that must be coerced; the rest pass as they are."""
    kinds = {**dict.fromkeys(_FLOATS, float), **dict.fromkeys(_INTS, int), "stream": bool}
    return [(i, kinds[name]) for i, name in enumerate(fields) if name in kinds]


# Only the typed positions are touched, in place: the ledger thread canonicalises
# every entry twice (append, checkpoint), on the gateway's core.
_TYPED_V1 = _typed(FIELDS_V1)
_TYPED = _typed(FIELDS)


def _coerced(tag: str, values: Sequence[Any], typed: list[tuple[int, type]]) -> bytes:
    out = [tag, *values]
    for i, kind in typed:
        value = out[i + 1]
        if value is not None:
            out[i + 1] = kind(value)
    return orjson.dumps(out)


def canonical(values: Sequence[Any]) -> bytes:
    """The canonical bytes of an entry given its field values in ``FIELDS`` (or ``FIELDS_V1``) order."""
    if len(values) == len(FIELDS) and values[-1] is None:
        values = values[: len(FIELDS_V1)]
    if len(values) == len(FIELDS_V1):
        return _coerced(VERSION, values, _TYPED_V1)
    if len(values) != len(FIELDS):
        raise ValueError(
            f"an entry has {len(FIELDS_V1)} or {len(FIELDS)} fields, not {len(values)}"
        )
    return _coerced(VERSION_2, values, _TYPED)


def canonical_entry(entry: LedgerEntry) -> bytes:
    """The canonical bytes of an entry."""
    return canonical(entry.as_tuple())


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def link(previous: bytes, leaf: bytes) -> bytes:
    """The next chain hash."""
    return hashlib.sha256(previous + leaf).digest()


@dataclass
class Frontier:
    """Roots of the perfect subtrees of a Merkle tree, largest first, and its size."""

    size: int = 0
    roots: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash."""
        self.roots.append(leaf)
        self.size += 1
        n = self.size
        while n % 2 == 0:  # merge equal-sized subtrees, like carrying in binary addition
            right, left = self.roots.pop(), self.roots.pop()
            self.roots.append(node_hash(left, right))
            n //= 2

    def root(self) -> bytes:
        """The Merkle tree head (RFC 6962 MTH) of the leaves so far."""
        if not self.roots:
            return hashlib.sha256(b"").digest()
        head = self.roots[-1]
        for left in reversed(self.roots[:-1]):
            head = node_hash(left, head)
        return head

    def dump(self) -> str:
        """For storage."""
        return orjson.dumps({"size": self.size, "roots": [r.hex() for r in self.roots]}).decode()

    @classmethod
    def load(cls, text: str | None) -> Frontier:
        """From storage."""
        if not text:
            return cls()
        data = orjson.loads(text)
        return cls(int(data["size"]), [bytes.fromhex(r) for r in data["roots"]])


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 MTH of a list of leaf hashes (recursive definition; for proofs and tests)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 audit path of leaf ``index`` in the tree of ``leaves``."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if index < k:
        return [*inclusion_path(index, leaves[:k]), merkle_root(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), merkle_root(leaves[:k])]


def root_from_path(index: int, size: int, leaf: bytes, path: Iterable[bytes]) -> bytes:
    """The root an audit path leads to (RFC 9162 section 2.1.3.2).

    ``ValueError`` for what the RFC's verifier refuses: a leaf index outside
    ``[0, size)``, a hash that is not 32 bytes, a path too long or too short.
    """
    for what, n in (("leaf index", index), ("tree size", size)):
        if not isinstance(n, int) or isinstance(n, bool):
            raise ValueError(f"{what} must be an integer, not {n!r}")
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} entries")
    hashes = [leaf, *path]
    if any(len(h) != HASH_BYTES for h in hashes):
        raise ValueError(f"every hash of a proof is {HASH_BYTES} bytes")
    fn, sn, r = index, size - 1, leaf
    for p in hashes[1:]:
        if sn == 0:
            raise ValueError("audit path is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("audit path is shorter than the tree is deep")
    return r
