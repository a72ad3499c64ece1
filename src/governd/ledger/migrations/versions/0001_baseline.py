"""Baseline: the schema of the first ledger (entries, API keys, operator budgets).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("run_id", sa.String(128)),
        sa.Column("model", sa.String(255)),
        sa.Column("served_model", sa.String(255)),
        sa.Column("deployment", sa.String(255)),
        sa.Column("decision", sa.String(24), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("usage_source", sa.String(16), nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
    )
    op.create_index("ix_entries_principal_ts", "ledger_entries", ["principal", "ts"])
    op.create_index("ix_entries_run", "ledger_entries", ["run_id"])
    op.create_index("ix_entries_ts", "ledger_entries", ["ts"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "budgets",
        sa.Column("node", sa.String(255), primary_key=True),
        sa.Column("unit", sa.String(8), primary_key=True),
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("limit", sa.Float, nullable=False),
        sa.Column("soft", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budgets")
    op.drop_table("api_keys")
    op.drop_table("ledger_entries")
