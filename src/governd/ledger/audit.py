"""``governd audit``: verify the chain and the signed checkpoints; inclusion proofs.

Verification reads the ledger in ``seq`` order and recomputes every chain
hash; the first entry whose stored hash differs is where the record was
edited, or where an entry was inserted, deleted or moved before it. Each
checkpoint's Merkle root is recomputed at its size and its signature checked
against the trusted keys; a checkpoint larger than the ledger means entries
were cut off its end. Entries appended after the last checkpoint can be cut
without trace: checkpoints are frequent for that reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governd.config import GovernConfig
from governd.ledger.chain import (
    HASH_BYTES,
    ZERO,
    canonical,
    inclusion_path,
    leaf_hash,
    link,
    merkle_root,
    root_from_path,
)
from governd.ledger.entries import FIELDS
from governd.ledger.signing import Signer, checkpoint_message, key_id, verify

_PAGE = 5000


def signer_for(cfg: GovernConfig, create: bool = True) -> Signer:
    """The configured signing key, or one kept beside a SQLite ledger (created on first use)."""
    if cfg.ledger.signing_key:
        return Signer.load(Path(cfg.ledger.signing_key))
    if cfg.storage.startswith("sqlite:///") and not cfg.storage.endswith(":memory:"):
        return Signer.load(
            Path(cfg.storage.removeprefix("sqlite:///") + ".signing.pem"), create=create
        )
    raise ValueError("ledger.signing_key is required when the ledger is not a SQLite file")


def trusted_keys(cfg: GovernConfig, extra: Iterable[str] = ()) -> dict[str, str]:
    """key id -> public key: the configured signing key, ``ledger.trusted_keys`` and ``extra``."""
    keys = [*cfg.ledger.trusted_keys, *extra]
    with contextlib.suppress(ValueError, OSError):
        keys.append(signer_for(cfg, create=False).public_hex)
    return {key_id(k): k for k in keys}


def open_ledger(url: str) -> Engine:
    """An engine on an existing ledger, at the latest schema, never migrating or writing it."""
    from governd.ledger import migrate
    from governd.ledger.storage import unreachable

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise ValueError(f"no ledger at {url}")
    engine = sa.create_engine(url)
    try:
        revision = migrate.current(engine)
    except sa.exc.OperationalError as exc:
        raise unreachable(url, exc) from None
    if revision != migrate.head():
        raise ValueError(
            f"ledger schema is at {revision}, not {migrate.head()}: start governd once to migrate it"
        )
    return engine


@dataclass
class Report:
    """What ``verify`` found."""

    entries: int = 0
    checkpoints: int = 0
    #: Signs of tampering: a broken chain, a root that does not match, a bad signature.
    problems: list[str] = field(default_factory=list)
    #: Checkpoints signed by a key nobody said to trust: neither good nor bad, unknown.
    unverifiable: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when nothing shows tampering (some checkpoints may still be unverifiable)."""
        return not self.problems

    @property
    def verified(self) -> bool:
        """True when intact and every checkpoint's signature was checked with a trusted key."""
        return self.intact and not self.unverifiable


def _rows(engine: Engine) -> Iterator[tuple[int, str, tuple[Any, ...], str | None]]:
    cols = ", ".join(FIELDS)
    after = -1
    while True:
        with engine.connect() as conn:
            page = conn.execute(
                sa.text(
                    f"SELECT seq, {cols}, chain_hash FROM ledger_entries_named WHERE seq > :a ORDER BY seq LIMIT :n"
                ),
                {"a": after, "n": _PAGE},
            ).all()
        if not page:
            return
        for row in page:
            yield int(row[0]), str(row[1]), tuple(row[1:-1]), row[-1]
        after = int(page[-1][0])


def verify_ledger(engine: Engine, keys: dict[str, str]) -> Report:
    """Check the chain, then every checkpoint against the entries and the trusted keys."""
    report = Report()
    leaves: list[bytes] = []
    previous = ZERO
    broken = False
    for seq, entry_id, values, stored in _rows(engine):
        leaf = leaf_hash(canonical(values))
        leaves.append(leaf)
        previous = link(previous, leaf)
        if not broken and stored != previous.hex():
            report.problems.append(
                f"chain broken at entry {entry_id} (seq {seq}, position {len(leaves) - 1}): it was edited, "
                "or an entry before it was inserted, deleted or moved"
            )
            broken = True
    report.entries = len(leaves)
    with engine.connect() as conn:
        checkpoints = conn.execute(
            sa.text(
                "SELECT size, root, chain_head, ts, key_id, signature FROM checkpoints ORDER BY size"
            )
        ).all()
    report.checkpoints = len(checkpoints)
    for size, root, head, ts, kid, signature in checkpoints:
        if size > len(leaves):
            report.problems.append(
                f"truncated: checkpoint of {size} entries, but the ledger holds {len(leaves)}"
            )
            continue
        if merkle_root(leaves[:size]).hex() != root:
            report.problems.append(
                f"checkpoint at {size} entries: Merkle root does not match the entries"
            )
        public = keys.get(kid)
        if public is None:
            report.unverifiable.append(
                f"checkpoint at {size} entries signed by unknown key {kid} (pass --public-key)"
            )
        elif not verify(public, checkpoint_message(size, root, head, ts), signature):
            report.problems.append(f"checkpoint at {size} entries: bad signature")
    return report


def inclusion_proof(engine: Engine, entry_id: str) -> dict[str, Any]:
    """An RFC 6962 inclusion proof of one entry against the latest checkpoint that covers it."""
    leaves: list[bytes] = []
    index = None
    for _, eid, values, _ in _rows(engine):
        if eid == entry_id:
            index = len(leaves)
        leaves.append(leaf_hash(canonical(values)))
    if index is None:
        raise LookupError(f"no ledger entry {entry_id!r}")
    with engine.connect() as conn:
        cp = conn.execute(
            sa.text(
                "SELECT size, root, chain_head, ts, key_id, signature FROM checkpoints WHERE size > :i ORDER BY size DESC LIMIT 1"
            ),
            {"i": index},
        ).first()
        if cp is None:
            raise LookupError(f"entry {entry_id!r} is not covered by a checkpoint yet")
        key = conn.execute(
            sa.text("SELECT public_key FROM signing_keys WHERE key_id = :k"), {"k": cp[4]}
        ).scalar()
    size = int(cp[0])
    return {
        "entry_id": entry_id,
        "leaf_index": index,
        "leaf_hash": leaves[index].hex(),
        "path": [p.hex() for p in inclusion_path(index, leaves[:size])],
        "checkpoint": {
            "size": size,
            "root": cp[1],
            "chain_head": cp[2],
            "ts": cp[3],
            "key_id": cp[4],
            "signature": cp[5],
            "public_key": key,
        },
    }


def verify_proof(
    proof: dict[str, Any], keys: dict[str, str], entry: tuple[Any, ...] | None = None
) -> Report:
    """Whether a proof holds: its path leads to the root, the root is signed by a trusted key.

    ``problems`` says what is false; ``unverifiable``, that the checkpoint's key is unknown.
    """
    report = Report(entries=1, checkpoints=1)
    cp = proof["checkpoint"]
    try:
        leaf = hash_of(proof["leaf_hash"], "leaf_hash")
        path = [hash_of(p, f"path[{i}]") for i, p in enumerate(proof["path"])]
        if entry is not None and leaf_hash(canonical(entry)) != leaf:
            report.problems.append("the entry does not hash to the proof's leaf")
        root = root_from_path(proof["leaf_index"], cp["size"], leaf, path)
    except ValueError as exc:
        report.problems.append(str(exc))
        return report
    if root.hex() != cp["root"]:
        report.problems.append("the audit path does not lead to the checkpoint's root")
    public = keys.get(cp["key_id"])
    if public is None:
        report.unverifiable.append(
            f"checkpoint signed by unknown key {cp['key_id']} (pass --public-key)"
        )
    elif not verify(
        public,
        checkpoint_message(cp["size"], cp["root"], cp["chain_head"], cp["ts"]),
        cp["signature"],
    ):
        report.problems.append("bad checkpoint signature")
    return report


def hash_of(text: object, what: str) -> bytes:
    """A SHA-256 hash from its hex form; ``ValueError`` naming ``what`` if it is not one."""
    try:
        raw = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != HASH_BYTES:
        raise ValueError(f"{what} is not a {HASH_BYTES}-byte SHA-256 hash in hex")
    return raw
