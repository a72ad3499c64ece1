"""Rollups per principal, model and hour, and the high-water mark of what they cover.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from governd.ledger.rollups import roll_up_connection

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "rollups",
        sa.Column("hour", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("principal", sa.String(255), primary_key=True),
        sa.Column("model", sa.String(255), primary_key=True),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
    )
    op.create_table(
        "ledger_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    roll_up_connection(op.get_bind(), source="ledger_entries")  # the view comes with 0008


def downgrade() -> None:
    op.drop_table("ledger_meta")
    op.drop_table("rollups")
