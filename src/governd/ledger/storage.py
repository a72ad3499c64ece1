"""The ledger and config store behind one interface: SQLite (WAL) by default.

Holds ledger entries and API keys (hashed). All methods are synchronous and
meant to run off the event loop (the writer thread, or ``asyncio.to_thread``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governd.errors import StorageUnavailable
from governd.ledger import appender, rollups, run_queries
from governd.ledger.entries import LedgerEntry
from governd.ledger.names import NameIds
from governd.ledger.signing import Signer
from governd.ledger.tables import (
    ACTIVE_JOBS,
    api_keys,
    approvals,
    budgets,
    entries,
    entries_named,
    in_subtree,
    jobs,
    signing_keys,
    tool_pins,
)


def _sqlite_pragmas(durable: bool) -> Any:
    # WAL; FULL syncs every commit to disk (strict durability), NORMAL only at checkpoints.
    def apply(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    return apply


def plain_rows(rows: Sequence[sa.RowMapping]) -> list[dict[str, Any]]:
    """Rows as plain dicts with str keys."""
    # Result keys can be str subclasses (quoted_name), which orjson refuses.
    return [{str(k): v for k, v in row.items()} for row in rows]


def unreachable(url: str, exc: sa.exc.OperationalError) -> StorageUnavailable:
    """The error a user reads when the ledger's database cannot be opened (no password shown)."""
    shown = sa.make_url(url).render_as_string(hide_password=True)
    why = str(exc.orig or exc).strip().splitlines()[0]
    return StorageUnavailable(f"cannot open the ledger at {shown}: {why}")


def _unavailable(url: str) -> Any:
    """An engine's error hook: a database that cannot be reached or used is a 503, not a 500.

    Every caller (a key lookup, an admin read, the writer) then sees one
    ``StorageUnavailable`` naming the database without its password.
    """
    shown = sa.make_url(url).render_as_string(hide_password=True)

    def replace(ctx: sa.engine.ExceptionContext) -> BaseException | None:
        if not (ctx.is_disconnect or isinstance(ctx.sqlalchemy_exception, sa.exc.OperationalError)):
            return None
        why = str(ctx.original_exception).strip().splitlines()[0] if ctx.original_exception else ""
        return StorageUnavailable(
            f"the ledger database {shown} is unavailable: {why}", retry_after=1.0
        )

    return replace


def _under(c: Any, node: str) -> Any:
    """Rows of ``node``'s subtree, or of one key (``path/key_id``)."""
    head, _, last = node.rpartition("/")
    if last.startswith("key_"):
        return sa.and_(c.principal == head, c.key_id == last)
    return in_subtree(c.principal, node)


#: The newest schema revision this governd knows (revision files are named after their id).
LATEST = max(
    p.name.partition("_")[0]
    for p in (Path(__file__).parent / "migrations" / "versions").glob("0*.py")
)


def schema_revision(engine: Engine) -> str | None:
    """The database's schema revision (alembic's version table), read without alembic."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return found[0] if len(found) == 1 else None


class Storage:
    """SQLAlchemy-backed store for entries and keys; ``url`` is a SQLAlchemy URL."""

    def __init__(self, url: str, durable: bool = False) -> None:
        self.url = url
        if url.startswith("sqlite:///") and not url.endswith(":memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # pre_ping: a connection that died with its server is replaced, not handed out.
        self.engine: Engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas(durable))
        try:
            if schema_revision(self.engine) != LATEST:
                # alembic (12 MB) only when there is something to do: a process serving a
                # database at the head never imports it.
                from governd.ledger import migrate

                migrate.upgrade(self.engine)
        except sa.exc.OperationalError as exc:
            raise unreachable(url, exc) from None
        # After the migrations, which report their own failures (``unreachable``).
        sa.event.listen(self.engine, "handle_error", _unavailable(url))
        self._names = NameIds()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # entries

    def append(self, batch: Sequence[LedgerEntry]) -> None:
        """Insert entries in one transaction, each chained to the one before it."""
        if batch:
            appender.append_chained(self.engine, batch, self._names)

    def checkpoint(self, signer: Signer, now: float) -> dict[str, Any] | None:
        """Sign a checkpoint over every entry so far (None when nothing is new)."""
        return appender.make_checkpoint(self.engine, signer, now)

    def remember_signing_key(self, key_id: str, public_hex: str, now: float) -> None:
        """Note a checkpoint key as seen (once)."""
        with self.engine.begin() as conn:
            seen = conn.execute(
                sa.select(signing_keys.c.key_id).where(signing_keys.c.key_id == key_id)
            ).first()
            if seen is None:
                conn.execute(
                    signing_keys.insert(),
                    [{"key_id": key_id, "public_key": public_hex, "first_used": now}],
                )

    def signing_key_ids(self) -> list[str]:
        """Ids of the keys that signed checkpoints so far, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(signing_keys.c.key_id).order_by(signing_keys.c.first_used)
            ).all()
        return [str(r[0]) for r in rows]

    def query(
        self,
        *,
        entry_id: str | None = None,
        principal: str | None = None,
        run: str | None = None,
        model: str | None = None,
        decision: str | None = None,
        since: float | None = None,
        after: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Entries matching every filter given, with their ``seq`` for paging."""
        c = entries_named.c
        q = sa.select(entries_named)
        if entry_id:
            q = q.where(c.id == entry_id)
        if principal:
            q = q.where(in_subtree(c.principal, principal))
        if run:
            q = q.where(c.run_id == run)
        if model:
            q = q.where(sa.or_(c.model == model, c.served_model == model))
        if decision:
            q = q.where(c.decision == decision)
        if since is not None:
            q = q.where(c.ts >= since)
        if after is not None:
            q = q.where(c.seq < after if newest_first else c.seq > after)
        order = c.seq.desc() if newest_first else c.seq.asc()
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(order).limit(limit)).mappings().all()
        return plain_rows(rows)

    def summary(
        self, *, principal: str | None = None, since: float | None = None, by_hour: bool = False
    ) -> list[dict[str, Any]]:
        """Per principal (and hour): requests, errors, tokens and cost of model calls, from rollups."""
        return rollups.summary(self.engine, principal, since, by_hour)

    def roll_up(self) -> int:
        """Fold new entries into the rollups; how many were folded."""
        with appender.locked_connection(self.engine) as conn:
            return rollups.roll_up_connection(conn)

    def unrolled(self) -> int:
        """Entries not yet folded into the rollups (what a summary still reads one by one)."""
        return rollups.unrolled(self.engine)

    def run_totals(self, principal: str, run_id: str) -> dict[str, Any] | None:
        """A run's counters (started, steps, tool calls, USD, risk) as its entries record them."""
        return run_queries.run_totals(self.engine, principal, run_id)

    def runs(self, principal: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The most recently active runs, optionally in a principal's subtree."""
        return run_queries.runs(self.engine, principal, limit)

    def count(self) -> int:
        """Number of entries."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar_one())

    # keys

    def insert_key(self, row: dict[str, Any]) -> None:
        """Store a key record (its hash, never the key)."""
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert(), [row])

    def key_by_hash(self, digest: str) -> dict[str, Any] | None:
        """The key record with this hash."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.hash == digest))
                .mappings()
                .first()
            )
        return plain_rows([row])[0] if row else None

    def keys(self, principal: str | None = None) -> list[dict[str, Any]]:
        """Key records, optionally only those in a principal's subtree."""
        q = sa.select(api_keys).order_by(api_keys.c.created_at)
        if principal:
            q = q.where(in_subtree(api_keys.c.principal, principal))
        with self.engine.connect() as conn:
            return plain_rows(conn.execute(q).mappings().all())

    def revoke_key(self, key_id: str, at: float) -> dict[str, Any] | None:
        """Mark a key revoked; the updated record, or None if there is no such key."""
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = (
                conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
            )
        return plain_rows([row])[0] if row else None

    # budgets set by operators at runtime (config budgets are not stored)

    def upsert_budget(self, row: dict[str, Any]) -> None:
        """Store an operator's budget (node, unit, period, limit, soft, updated_at)."""
        key = {k: row[k] for k in ("node", "unit", "period")}
        with self.engine.begin() as conn:
            conn.execute(budgets.delete().where(*(budgets.c[k] == v for k, v in key.items())))
            conn.execute(budgets.insert(), [row])

    def budget_overrides(self) -> list[dict[str, Any]]:
        """Every budget operators have set."""
        with self.engine.connect() as conn:
            return plain_rows(conn.execute(sa.select(budgets)).mappings().all())

    def spent_since(self, node: str, unit: str, since: float) -> float:
        """USD, tokens or device-hours spent under ``node`` (a tree path, or ``path/key_id``) since ``since``.

        Device-hours come from the jobs that finished since then (a job is charged when it ends,
        like every action).
        """
        table = jobs if unit == "device_hours" else entries_named
        c = table.c
        done: sa.ColumnElement[bool] = sa.true()
        if unit == "device_hours":
            amount, ts = c.device_seconds / 3600.0, c.finished_at
            done = c.status.notin_(ACTIVE_JOBS)
        else:
            amount = c.cost_usd if unit == "usd" else c.input_tokens + c.output_tokens
            ts = c.ts
        where = _under(c, node)
        q = sa.select(sa.func.coalesce(sa.func.sum(amount), 0)).where(where, ts >= since, done)
        with self.engine.connect() as conn:
            return float(conn.execute(q).scalar_one())

    def overbilled_since(self, node: str, since: float) -> list[dict[str, Any]]:
        """The ``overbilled`` signals of calls under ``node`` since ``since`` whose upstream billed
        past their bound (rare: each is a tripped deployment)."""
        c = entries_named.c
        where = _under(c, node)
        q = sa.select(c.signals).where(where, c.ts >= since, c.error_code == "upstream_overbilled")
        with self.engine.connect() as conn:
            rows = conn.execute(q).scalars().all()
        return [orjson.loads(r).get("overbilled", {}) for r in rows if r]

    # approvals

    def add_approval(self, row: dict[str, Any]) -> None:
        """Store a pending approval."""
        with self.engine.begin() as conn:
            conn.execute(approvals.insert(), [row])

    def approval(self, approval_id: str) -> dict[str, Any] | None:
        """One approval."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(approvals).where(approvals.c.id == approval_id))
                .mappings()
                .first()
            )
        return plain_rows([row])[0] if row else None

    def approvals(
        self, status: str | None = None, principal: str | None = None
    ) -> list[dict[str, Any]]:
        """Approvals, oldest first, optionally by status and principal subtree."""
        q = sa.select(approvals).order_by(approvals.c.created_at)
        if status:
            q = q.where(approvals.c.status == status)
        if principal:
            q = q.where(in_subtree(approvals.c.principal, principal))
        with self.engine.connect() as conn:
            return plain_rows(conn.execute(q).mappings().all())

    def decide_approval(self, approval_id: str, status: str, by: str | None, at: float) -> bool:
        """Settle a pending approval; False when it was not pending (already decided or expired)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                approvals.update()
                .where(approvals.c.id == approval_id, approvals.c.status == "pending")
                .values(status=status, decided_by=by, decided_at=at)
            )
        return bool(done.rowcount)

    # tool pins

    def tool_pins(self) -> dict[str, dict[str, Any]]:
        """Every pin, by namespaced tool name."""
        with self.engine.connect() as conn:
            rows = plain_rows(conn.execute(sa.select(tool_pins)).mappings().all())
        return {r["tool"]: r for r in rows}

    def put_tool_pin(self, row: dict[str, Any]) -> None:
        """Create or replace a tool's pin."""
        with self.engine.begin() as conn:
            conn.execute(tool_pins.delete().where(tool_pins.c.tool == row["tool"]))
            conn.execute(tool_pins.insert(), [row])
