"""Behaviour signals on entries (JSON text; entries without them keep the v1 hash form).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    # A plain ADD COLUMN: no table rewrite, however long the ledger.
    op.add_column("ledger_entries", sa.Column("signals", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("signals")
