"""Compact entries: principals, keys, models and deployments by reference to ``ledger_names``.

New entries store a reference instead of repeating each name (the name
columns are left '' or NULL); rows written before, or by an older replica
during a rolling upgrade, keep their names and read as before. The view
``ledger_entries_named`` puts names back for every reader, so the hashed
canonical form (names, not ids) is unchanged. A later migration that adds a
column to ``ledger_entries`` must recreate the view.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

_REFS = ("principal", "key", "model", "served_model", "deployment")

VIEW = """
CREATE VIEW ledger_entries_named AS
SELECT e.seq, e.id, e.ts, e.kind, e.operation,
       COALESCE(NULLIF(e.principal, ''), np.name, '') AS principal,
       COALESCE(e.key_id, nk.name) AS key_id,
       e.run_id,
       COALESCE(e.model, nm.name) AS model,
       COALESCE(e.served_model, ns.name) AS served_model,
       COALESCE(e.deployment, nd.name) AS deployment,
       e.decision, e.reasons, e.status, e.error_code, e.stream, e.attempts, e.latency_ms,
       e.ttft_ms, e.input_tokens, e.cached_tokens, e.output_tokens, e.usage_source, e.cost_usd,
       e.chain_hash, e.signals
FROM ledger_entries e
LEFT JOIN ledger_names np ON np.id = e.principal_ref
LEFT JOIN ledger_names nk ON nk.id = e.key_ref
LEFT JOIN ledger_names nm ON nm.id = e.model_ref
LEFT JOIN ledger_names ns ON ns.id = e.served_model_ref
LEFT JOIN ledger_names nd ON nd.id = e.deployment_ref
"""


def upgrade() -> None:
    op.create_table(
        "ledger_names",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.UniqueConstraint("kind", "name", name="uq_ledger_names"),
    )
    # Plain ADD COLUMNs: no table rewrite, and older replicas keep writing names.
    for ref in _REFS:
        op.add_column("ledger_entries", sa.Column(f"{ref}_ref", sa.Integer))
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW ledger_entries_named")
    with op.batch_alter_table("ledger_entries") as batch:
        for ref in _REFS:
            batch.drop_column(f"{ref}_ref")
    op.drop_table("ledger_names")
