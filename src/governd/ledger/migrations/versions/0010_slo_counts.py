"""SLO counts in buckets shared by replicas, and each SLO alert's state.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "slo_buckets",
        sa.Column("slo", sa.String(128), primary_key=True),
        sa.Column("grp", sa.String(1024), primary_key=True),
        sa.Column("width", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("good", sa.BigInteger, nullable=False),
        sa.Column("bad", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "slo_alerts",
        sa.Column("slo", sa.String(128), primary_key=True),
        sa.Column("grp", sa.String(1024), primary_key=True),
        sa.Column("severity", sa.String(32), primary_key=True),
        sa.Column("firing", sa.Boolean, nullable=False),
        sa.Column("since", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slo_alerts")
    op.drop_table("slo_buckets")
