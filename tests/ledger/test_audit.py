"""Tamper evidence: every kind of change is reported; proofs hold; migration chains old entries."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from governd.cli import main
from governd.ledger import Storage, migrate
from governd.ledger.audit import inclusion_proof, open_ledger, verify_ledger, verify_proof
from governd.ledger.signing import Signer
from tests.ledger.test_storage import BASE


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.load(tmp_path / "key.pem", create=True)


def ledger(
    url: str, signer: Signer, n: int = 20, checkpoint_at: tuple[int, ...] = (10, 20)
) -> Storage:
    storage = Storage(url)
    written = 0
    for stop in checkpoint_at:
        storage.append(
            [
                replace(BASE, id=f"req_{i}", ts=1000.0 + i, cost_usd=i / 1000)
                for i in range(written, stop)
            ]
        )
        storage.checkpoint(signer, 2000.0 + stop)
        written = stop
    if written < n:
        storage.append([replace(BASE, id=f"req_{i}", ts=1000.0 + i) for i in range(written, n)])
    return storage


def keys(signer: Signer) -> dict[str, str]:
    return {signer.key_id: signer.public_hex}


def run_sql(storage: Storage, *statements: str) -> None:
    with storage.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def test_an_untouched_ledger_verifies(storage_url: str, tmp_path: Path, signer: Signer) -> None:
    report = verify_ledger(ledger(storage_url, signer, n=25).engine, keys(signer))
    assert report.intact and (report.entries, report.checkpoints) == (25, 2)


@pytest.mark.parametrize(
    ("statements", "found"),
    [
        (
            ["UPDATE ledger_entries SET cost_usd = 0 WHERE id = 'req_7'"],
            "chain broken at entry req_7",
        ),
        (
            ["UPDATE ledger_entries SET principal = 'acme/other' WHERE id = 'req_15'"],
            "chain broken at entry req_15",
        ),
        (
            ["UPDATE ledger_entries SET key_ref = principal_ref WHERE id = 'req_9'"],
            "chain broken at entry req_9",
        ),
        (
            ["UPDATE ledger_names SET name = 'acme/evil' WHERE kind = 'principal'"],
            "chain broken at entry req_0",
        ),
        (["DELETE FROM ledger_entries WHERE id = 'req_4'"], "chain broken at entry req_5"),
        (
            [
                "UPDATE ledger_entries SET seq = seq + 1000 WHERE seq >= 4",
                "UPDATE ledger_entries SET seq = seq - 999 WHERE seq >= 1004",
                "INSERT INTO ledger_entries (seq, id, ts, kind, operation, principal, decision, reasons, status, stream,"
                " attempts, latency_ms, input_tokens, cached_tokens, output_tokens, usage_source, cost_usd, chain_hash)"
                " VALUES (4, 'forged', 1.0, 'model_call', 'chat', 'acme', 'allow', '', 200, false, 1, 1.0, 0, 0, 0, 'none', 0.0,"
                " '00')",
            ],
            "chain broken at entry forged",
        ),
        (
            [
                "UPDATE ledger_entries SET seq = -1 WHERE id = 'req_3'",
                "UPDATE ledger_entries SET seq = 4 WHERE id = 'req_2'",
                "UPDATE ledger_entries SET seq = 3 WHERE seq = -1",
            ],
            "chain broken at entry req_3",
        ),
    ],
    ids=[
        "edited-cost",
        "edited-principal",
        "edited-reference",
        "renamed",
        "deleted",
        "inserted",
        "reordered",
    ],
)
def test_every_kind_of_change_is_reported_at_its_first_entry(
    storage_url: str, tmp_path: Path, signer: Signer, statements: list[str], found: str
) -> None:
    storage = ledger(storage_url, signer)
    run_sql(storage, *statements)
    report = verify_ledger(storage.engine, keys(signer))
    assert not report.intact
    assert found in report.problems[0]


def test_truncation_behind_a_checkpoint_is_reported(
    storage_url: str, tmp_path: Path, signer: Signer
) -> None:
    storage = ledger(storage_url, signer, n=20)
    run_sql(storage, "DELETE FROM ledger_entries WHERE seq > 17")
    report = verify_ledger(storage.engine, keys(signer))
    assert report.problems == ["truncated: checkpoint of 20 entries, but the ledger holds 17"]


def test_a_rewritten_chain_does_not_match_its_signed_checkpoint(
    storage_url: str, tmp_path: Path, signer: Signer
) -> None:
    """Recomputing every chain hash after an edit still breaks the checkpoint's Merkle root."""
    storage = ledger(storage_url, signer, n=10, checkpoint_at=(10,))
    run_sql(storage, "UPDATE ledger_entries SET cost_usd = 99 WHERE id = 'req_3'")
    from governd.ledger.chain import ZERO, canonical, leaf_hash, link
    from governd.ledger.entries import FIELDS

    with storage.engine.begin() as conn:
        rows = conn.execute(
            sa.text(f"SELECT seq, {', '.join(FIELDS)} FROM ledger_entries_named ORDER BY seq")
        ).all()
        previous = ZERO
        for row in rows:
            previous = link(previous, leaf_hash(canonical(tuple(row[1:]))))
            conn.execute(
                sa.text("UPDATE ledger_entries SET chain_hash = :h WHERE seq = :s"),
                {"h": previous.hex(), "s": row[0]},
            )
    report = verify_ledger(storage.engine, keys(signer))
    assert report.problems == ["checkpoint at 10 entries: Merkle root does not match the entries"]


def test_checkpoints_need_a_trusted_key_and_a_valid_signature(
    storage_url: str, tmp_path: Path, signer: Signer
) -> None:
    storage = ledger(storage_url, signer, n=10, checkpoint_at=(10,))
    stranger = Signer.load(tmp_path / "other.pem", create=True)
    unknown = verify_ledger(storage.engine, keys(stranger))
    assert unknown.intact and not unknown.verified, "an unknown key is not tampering"
    assert unknown.unverifiable == [
        f"checkpoint at 10 entries signed by unknown key {signer.key_id} (pass --public-key)"
    ]
    run_sql(storage, "UPDATE checkpoints SET ts = ts + 1")
    assert verify_ledger(storage.engine, keys(signer)).problems == [
        "checkpoint at 10 entries: bad signature"
    ]


def test_inclusion_proofs(storage_url: str, tmp_path: Path, signer: Signer) -> None:
    storage = ledger(storage_url, signer, n=25)
    proof = inclusion_proof(storage.engine, "req_13")
    assert proof["checkpoint"]["size"] == 20 and proof["leaf_index"] == 13
    assert verify_proof(proof, keys(signer)).verified
    bad = json.loads(json.dumps(proof))
    bad["path"][0] = "00" * 32
    assert "does not lead to the checkpoint's root" in verify_proof(bad, keys(signer)).problems[0]
    stranger = verify_proof(proof, {})
    assert stranger.intact and stranger.unverifiable and not stranger.verified
    with pytest.raises(LookupError, match="not covered"):
        inclusion_proof(storage.engine, "req_22")
    with pytest.raises(LookupError, match="no ledger entry"):
        inclusion_proof(storage.engine, "req_missing")


def test_migration_from_the_first_schema_chains_existing_entries(
    storage_url: str, tmp_path: Path, signer: Signer
) -> None:
    url = storage_url
    engine = sa.create_engine(url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        for i in range(5):
            conn.execute(
                sa.text(
                    "INSERT INTO ledger_entries (id, ts, kind, operation, principal, decision, reasons, status, stream,"
                    " attempts, latency_ms, input_tokens, cached_tokens, output_tokens, usage_source, cost_usd)"
                    f" VALUES ('old_{i}', {1000 + i}, 'model_call', 'chat', 'acme/t', 'allow', '', 200, false, 1, 2.5, 3, 0, 4,"
                    " 'upstream', 0.001)"
                )
            )
    storage = Storage(url)  # migrates on open
    storage.append([replace(BASE, id="new_0")])
    storage.checkpoint(signer, 3000.0)
    report = verify_ledger(open_ledger(url), keys(signer))
    assert report.intact and report.entries == 6
    assert migrate.current(storage.engine) == migrate.head()


def test_audit_commands_exit_codes(storage_url: str, tmp_path: Path, signer: Signer) -> None:
    storage = ledger(storage_url, signer)
    url = storage.url
    runner = CliRunner()
    ok = runner.invoke(
        main, ["audit", "verify", "--storage", url, "--public-key", signer.public_hex]
    )
    assert ok.exit_code == 0 and "intact: 20 entries, 2 signed checkpoints" in ok.output
    proof = runner.invoke(main, ["audit", "proof", "req_3", "--storage", url])
    assert proof.exit_code == 0
    (tmp_path / "proof.json").write_text(proof.output)
    checked = runner.invoke(
        main,
        ["audit", "verify-proof", str(tmp_path / "proof.json"), "--public-key", signer.public_hex],
    )
    assert checked.exit_code == 0 and "valid" in checked.output
    untrusted = runner.invoke(main, ["audit", "verify-proof", str(tmp_path / "proof.json")])
    assert untrusted.exit_code == 3 and "unverifiable: checkpoint signed by unknown key" in (
        untrusted.output
    )
    # A faithful copy whose signing key was not copied: unverifiable, never TAMPERED.
    copied = runner.invoke(main, ["audit", "verify", "--storage", url])
    assert copied.exit_code == 3 and "TAMPERED" not in copied.output, copied.output
    assert f"signed by unknown key {signer.key_id} (pass --public-key)" in copied.output
    run_sql(storage, "UPDATE ledger_entries SET status = 500 WHERE id = 'req_2'")
    bad = runner.invoke(
        main, ["audit", "verify", "--storage", url, "--public-key", signer.public_hex]
    )
    assert bad.exit_code == 1 and "TAMPERED: chain broken at entry req_2" in bad.output
    missing = runner.invoke(
        main, ["audit", "verify", "--storage", f"sqlite:///{tmp_path / 'nope.db'}"]
    )
    assert missing.exit_code == 1 and "no ledger" in missing.output


def test_key_rotation_is_recorded_and_both_keys_verify(storage_url: str, tmp_path: Path) -> None:
    from governd.ledger import LedgerWriter

    first, second = (
        Signer.load(tmp_path / "a.pem", create=True),
        Signer.load(tmp_path / "b.pem", create=True),
    )
    storage = Storage(storage_url)
    for signer, prefix in ((first, "a"), (second, "b")):
        writer = LedgerWriter(storage, flush_ms=5, signer=signer, checkpoint_every=3)
        writer.start()
        for i in range(5):
            writer.append(replace(BASE, id=f"{prefix}_{i}"))
        writer.close()
    rotations = [e for e in storage.query(limit=100) if e["operation"] == "signing_key"]
    assert [r["reasons"].split(" (")[0] for r in rotations] == [
        f"checkpoint key {first.key_id}",
        f"checkpoint key {second.key_id}",
    ]
    assert f"replaces {first.key_id}" in rotations[1]["reasons"]
    both = {first.key_id: first.public_hex, second.key_id: second.public_hex}
    assert verify_ledger(storage.engine, both).verified
    only_new = verify_ledger(storage.engine, {second.key_id: second.public_hex})
    assert only_new.intact and only_new.unverifiable
    assert all(f"unknown key {first.key_id}" in p for p in only_new.unverifiable)


def test_a_key_is_recorded_once_even_without_a_checkpoint(
    storage_url: str, tmp_path: Path, signer: Signer
) -> None:
    from governd.ledger import LedgerWriter

    storage = Storage(storage_url)
    crashed = LedgerWriter(
        storage, flush_ms=5, signer=signer, checkpoint_every=10_000, checkpoint_s=3600
    )
    crashed.start()  # records the key, then "dies" before any checkpoint
    assert crashed.flush()
    again = LedgerWriter(storage, flush_ms=5, signer=signer)
    again.start()
    again.close()
    crashed.close()
    assert len([e for e in storage.query(limit=100) if e["operation"] == "signing_key"]) == 1


def test_signals_are_hashed_and_entries_without_them_keep_the_first_form(
    storage_url: str, tmp_path: Path, signer: Signer
) -> None:
    from governd.ledger.chain import canonical_entry
    from governd.ledger.entries import FIELDS_V1

    plain = replace(BASE, id="plain")
    assert canonical_entry(plain).startswith(b'["governd.entry.v1"')
    assert len(json.loads(canonical_entry(plain))) == len(FIELDS_V1) + 1
    signalled = replace(BASE, id="signalled", signals='{"tier":"write"}')
    assert canonical_entry(signalled).startswith(b'["governd.entry.v2"')
    storage = Storage(storage_url)
    storage.append([plain, signalled])
    storage.checkpoint(signer, 3000.0)
    assert verify_ledger(storage.engine, keys(signer)).intact
    run_sql(
        storage, """UPDATE ledger_entries SET signals = '{"tier":"read"}' WHERE id = 'signalled'"""
    )
    report = verify_ledger(storage.engine, keys(signer))
    assert "chain broken at entry signalled" in report.problems[0]


def test_a_checkpoint_never_signs_past_an_entry_it_cannot_re_derive(
    storage_url: str, tmp_path: Path, signer: Signer
) -> None:
    """An entry this code cannot hash to its stored link (edited, or from a newer version) stops it."""
    storage = ledger(storage_url, signer, n=10, checkpoint_at=(4,))
    run_sql(storage, "UPDATE ledger_entries SET status = 201 WHERE id = 'req_7'")
    checkpoint = storage.checkpoint(signer, 3000.0)
    assert checkpoint is not None and checkpoint["size"] == 7
    assert storage.checkpoint(signer, 3001.0) is None
    report = verify_ledger(storage.engine, keys(signer))
    assert report.problems == [
        "chain broken at entry req_7 (seq 8, position 7): it was edited, or an entry before it was "
        "inserted, deleted or moved"
    ]


def test_a_checkpoint_starts_from_the_last_one_by_seq_not_by_position(
    storage_url: str, signer: Signer
) -> None:
    """Deleting an old entry shifts every position after it; the next checkpoint still signs on."""
    storage = ledger(storage_url, signer, n=14, checkpoint_at=(10,))
    run_sql(storage, "DELETE FROM ledger_entries WHERE id = 'req_3'")
    checkpoint = storage.checkpoint(signer, 3000.0)
    assert checkpoint is not None and checkpoint["size"] == 14
    problems = verify_ledger(storage.engine, keys(signer)).problems
    assert problems and "chain broken at entry req_4" in problems[0]


def test_checkpoints_signed_before_head_seq_was_kept_are_found_by_position(
    storage_url: str, signer: Signer
) -> None:
    storage = ledger(storage_url, signer, n=25, checkpoint_at=(10, 20))
    run_sql(storage, "UPDATE checkpoints SET head_seq = NULL")
    checkpoint = storage.checkpoint(signer, 3000.0)
    assert checkpoint is not None and checkpoint["size"] == 25
    report = verify_ledger(storage.engine, keys(signer))
    assert report.intact and report.entries == 25, report.problems


@pytest.mark.parametrize(
    "revision", ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]
)
def test_migration_from_every_earlier_schema_keeps_entries_readable_and_verifiable(
    storage_url: str, signer: Signer, revision: str
) -> None:
    """Entries written by a governd at each earlier schema survive every later migration."""
    from governd.ledger.chain import ZERO, canonical_entry, leaf_hash, link
    from governd.ledger.entries import FIELDS_V1

    engine = sa.create_engine(storage_url)
    migrate.upgrade(engine, revision)
    chained = revision != "0001"
    columns = [*FIELDS_V1, *(["chain_hash"] if chained else [])]
    previous = ZERO
    with engine.begin() as conn:
        for i in range(4):
            old = replace(BASE, id=f"old_{i}", ts=1000.0 + i, principal=f"acme/t{i % 2}")
            previous = link(previous, leaf_hash(canonical_entry(old)))
            values = {f: old.as_dict()[f] for f in FIELDS_V1} | {"chain_hash": previous.hex()}
            conn.execute(
                sa.text(
                    f"INSERT INTO ledger_entries ({', '.join(columns)}) "
                    f"VALUES ({', '.join(':' + c for c in columns)})"
                ),
                values,
            )
    engine.dispose()
    storage = Storage(storage_url)  # migrates to the head on open
    storage.append([replace(BASE, id="new_0", ts=2000.0)])
    storage.checkpoint(signer, 3000.0)
    report = verify_ledger(storage.engine, keys(signer))
    assert report.intact and report.entries == 5, report.problems
    rows = storage.query(limit=10)
    assert [(r["id"], r["principal"]) for r in rows] == [
        ("old_0", "acme/t0"),
        ("old_1", "acme/t1"),
        ("old_2", "acme/t0"),
        ("old_3", "acme/t1"),
        ("new_0", BASE.principal),
    ]
    assert sum(r["requests"] for r in storage.summary()) == 5
    assert migrate.current(storage.engine) == migrate.head()
    storage.close()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"leaf_index": 20}, "leaf index 20 is outside a tree of 20 entries"),
        ({"leaf_index": -1}, "leaf index -1 is outside a tree of 20 entries"),
        ({"leaf_hash": "ab" * 31}, "leaf_hash is not a 32-byte SHA-256 hash in hex"),
        ({"leaf_hash": "not hex"}, "leaf_hash is not a 32-byte SHA-256 hash in hex"),
        ({"path": ["ab" * 33]}, "path[0] is not a 32-byte SHA-256 hash in hex"),
    ],
)
def test_a_proof_the_rfc_refuses_is_invalid(
    storage_url: str, signer: Signer, change: dict[str, object], problem: str
) -> None:
    storage = ledger(storage_url, signer, n=25)
    proof = {**inclusion_proof(storage.engine, "req_13"), **change}
    assert verify_proof(proof, keys(signer)).problems == [problem]
