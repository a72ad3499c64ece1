"""Checkpoints keep the seq of the entry they end at, so the next one reads only what is new.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    # Nullable: checkpoints signed before this revision are found by position, once.
    op.add_column("checkpoints", sa.Column("head_seq", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("head_seq")
