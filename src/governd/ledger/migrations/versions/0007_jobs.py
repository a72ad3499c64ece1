"""Jobs: accelerator jobs, queued, admitted, running and done, with their devices and history.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("principal", sa.String(255), nullable=False, index=True),
        sa.Column("key_id", sa.String(64)),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("flavor", sa.String(130)),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("priority_class", sa.String(64), nullable=False),
        sa.Column("max_runtime_s", sa.Float, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
        sa.Column("admitted_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("units", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("preemptions", sa.Integer, nullable=False),
        sa.Column("queue_wait_s", sa.Float, nullable=False),
        sa.Column("runtime_s", sa.Float, nullable=False),
        sa.Column("device_seconds", sa.Float, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("reserved_usd", sa.Float, nullable=False),
        sa.Column("reserved_device_hours", sa.Float, nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("pid", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("jobs")
