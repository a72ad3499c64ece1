"""SLO counts in buckets shared by replicas, and what controllers have on (alerts, actions).

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
        "control_states",
        sa.Column("scope", sa.String(255), primary_key=True),
        sa.Column("grp", sa.String(1024), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("since", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("control_states")
    op.drop_table("slo_buckets")
