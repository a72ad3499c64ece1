"""The ledger database's tables (SQLAlchemy Core); migrations create them, this describes them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from governd.ledger.job_record import ACTIVE

metadata = sa.MetaData()

entries = sa.Table(
    "ledger_entries",
    metadata,
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
    sa.Column("chain_hash", sa.String(64)),
    sa.Column("signals", sa.Text),
    # Compact entries: names by reference (``ledger_names``); the name columns above are then
    # '' (principal) or NULL. Readers use ``entries_named``, which puts the names back.
    sa.Column("principal_ref", sa.Integer),
    sa.Column("key_ref", sa.Integer),
    sa.Column("model_ref", sa.Integer),
    sa.Column("served_model_ref", sa.Integer),
    sa.Column("deployment_ref", sa.Integer),
    sa.Index("ix_entries_principal_ts", "principal", "ts"),
    sa.Index("ix_entries_run", "run_id"),
    sa.Index("ix_entries_ts", "ts"),
)

#: Every principal, key, model and deployment name entries refer to, once.
names = sa.Table(
    "ledger_names",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.UniqueConstraint("kind", "name", name="uq_ledger_names"),
)

#: Database views (kept out of ``metadata``: migrations create them, schema checks skip them).
views = sa.MetaData()

#: ``ledger_entries`` as entries read: names in place of references (the view of migration 0008).
entries_named = sa.Table(
    "ledger_entries_named",
    views,
    *(sa.Column(c.name, c.type) for c in entries.columns if not c.name.endswith("_ref")),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("principal", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)


budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("node", sa.String(255), primary_key=True),
    sa.Column("unit", sa.String(8), primary_key=True),
    sa.Column("period", sa.String(8), primary_key=True),
    sa.Column("limit", sa.Float, nullable=False),
    sa.Column("soft", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
)


checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("chain_head", sa.String(64), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
    sa.Column("frontier", sa.Text, nullable=False),
    sa.Column("head_seq", sa.BigInteger),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("first_used", sa.Float, nullable=False),
)


rollups = sa.Table(
    "rollups",
    metadata,
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

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("principal", sa.String(255), nullable=False),
    sa.Column("key_id", sa.String(64)),
    sa.Column("run_id", sa.String(128)),
    sa.Column("tool", sa.String(255), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("arguments", sa.Text, nullable=False),
    sa.Column("policy", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("decided_by", sa.String(255)),
    sa.Column("decided_at", sa.Float),
)

tool_pins = sa.Table(
    "tool_pins",
    metadata,
    sa.Column("tool", sa.String(255), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("seen_digest", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(255)),
)

#: Statuses of a job that has not ended.
ACTIVE_JOBS = tuple(sorted(str(s) for s in ACTIVE))

jobs = sa.Table(
    "jobs",
    metadata,
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

#: Leases: who holds a role only one replica may play at a time (the job scheduler), until when.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

#: What a replica asks of the scheduler it is not (cancel a job), taken by the one that is.
job_requests = sa.Table(
    "job_requests",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("by", sa.String(255), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

#: SLO counts shared by replicas: one row per SLO, group, bucket width and bucket start.
slo_buckets = sa.Table(
    "slo_buckets",
    metadata,
    sa.Column("slo", sa.String(128), primary_key=True),
    sa.Column("grp", sa.String(1024), primary_key=True),
    sa.Column("width", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("good", sa.BigInteger, nullable=False),
    sa.Column("bad", sa.BigInteger, nullable=False),
)

#: What controllers have on (an SLO's alerts and policies, a budget's forecast), so that one
#: replica records each change and a restart knows what is on.
control_states = sa.Table(
    "control_states",
    metadata,
    sa.Column("scope", sa.String(255), primary_key=True),
    sa.Column("grp", sa.String(1024), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("since", sa.Float, nullable=False),
)

#: Releases: each one's state, read by every replica each tick and changed by compare-and-set.
releases = sa.Table(
    "releases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("epoch_at", sa.Float, nullable=False),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("approval", sa.String(64)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: What each arm of a release counted since its weight was last set, added to by every replica.
release_counts = sa.Table(
    "release_counts",
    metadata,
    sa.Column("release", sa.String(128), primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("arm", sa.String(8), primary_key=True),
    sa.Column("metric", sa.String(16), primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Float, nullable=False),
)

#: The arm each agent run was first served by: a run never switches arms.
release_runs = sa.Table(
    "release_runs",
    metadata,
    sa.Column("release", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("arm", sa.String(8), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

ledger_meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)


def in_subtree(column: Any, principal: str) -> Any:
    """SQL condition: ``column`` is ``principal`` or below it in the tree."""
    return sa.or_(
        column == principal, column.like(principal.replace("%", r"\%") + "/%", escape="\\")
    )
