"""Tamper evidence: a chain hash on every entry, signed checkpoints, signing keys.

Revision ID: 0002
Revises: 0001

Entries written before this revision are chained in ``seq`` order here, so
the whole ledger verifies from its first entry.
"""

import sqlalchemy as sa
from alembic import op

from governd.ledger.chain import ZERO, canonical, leaf_hash, link
from governd.ledger.entries import FIELDS_V1

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("chain_hash", sa.String(64)))
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("chain_head", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("frontier", sa.Text, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("first_used", sa.Float, nullable=False),
    )
    _chain_existing()


def _chain_existing() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(f"SELECT seq, {', '.join(FIELDS_V1)} FROM ledger_entries ORDER BY seq")
    ).all()
    previous = ZERO
    for row in rows:
        previous = link(previous, leaf_hash(canonical(tuple(row[1:]))))
        conn.execute(
            sa.text("UPDATE ledger_entries SET chain_hash = :h WHERE seq = :s"),
            {"h": previous.hex(), "s": row[0]},
        )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("checkpoints")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("chain_hash")
