"""Rollups: requests, errors, tokens and cost per principal, model and hour.

Entries are folded into ``rollups`` after they land: everything past the
``rollup_seq`` high-water mark, in one ``INSERT ... SELECT ... ON CONFLICT``
under the ledger's write lock. Folding after the fact rather than at insert
time means entries from any replica count, including one still running an
older version that knows nothing of rollups. Readers add the few entries past
the mark, so totals are exact at any moment.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governd.ledger.tables import entries, entries_named, in_subtree, ledger_meta, rollups

_MARK = "rollup_seq"
_COUNTS = ("requests", "errors", "input_tokens", "cached_tokens", "output_tokens", "cost_usd")


def _hour(dialect: str) -> str:
    return (
        "CAST(ts / 3600 AS INTEGER) * 3600"
        if dialect == "sqlite"
        else "CAST(floor(ts / 3600) * 3600 AS INTEGER)"
    )


def roll_up_connection(conn: sa.Connection, source: str = "ledger_entries_named") -> int:
    """Fold entries past the mark into rollups (in the caller's transaction); how many were folded.

    ``source`` is what entries are read from: migrations older than the named view pass the table.
    """
    mark = _mark(conn)
    top = conn.execute(sa.select(sa.func.max(entries.c.seq))).scalar() or 0
    if top <= mark:
        return 0
    hour = _hour(conn.dialect.name)
    model = "COALESCE(served_model, model, '')"
    conn.execute(
        sa.text(f"""
        INSERT INTO rollups (hour, principal, model, requests, errors, input_tokens, cached_tokens, output_tokens, cost_usd)
        SELECT {hour}, principal, {model}, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
               SUM(input_tokens), SUM(cached_tokens), SUM(output_tokens), SUM(cost_usd)
        FROM {source} WHERE seq > :mark AND seq <= :top AND kind = 'model_call'
        GROUP BY {hour}, principal, {model}
        ON CONFLICT (hour, principal, model) DO UPDATE SET
          requests = rollups.requests + excluded.requests, errors = rollups.errors + excluded.errors,
          input_tokens = rollups.input_tokens + excluded.input_tokens,
          cached_tokens = rollups.cached_tokens + excluded.cached_tokens,
          output_tokens = rollups.output_tokens + excluded.output_tokens,
          cost_usd = rollups.cost_usd + excluded.cost_usd
    """),
        {"mark": mark, "top": top},
    )
    if conn.execute(sa.select(ledger_meta.c.key).where(ledger_meta.c.key == _MARK)).first():
        conn.execute(ledger_meta.update().where(ledger_meta.c.key == _MARK).values(value=top))
    else:
        conn.execute(ledger_meta.insert(), [{"key": _MARK, "value": top}])
    return int(top - mark)


def _mark(conn: sa.Connection) -> int:
    found = conn.execute(sa.select(ledger_meta.c.value).where(ledger_meta.c.key == _MARK))
    return int(found.scalar() or 0)


def unrolled(engine: Engine) -> int:
    """Entries past the mark: what a summary reads one by one, beside the rollups."""
    with engine.connect() as conn:
        past = sa.select(sa.func.count()).select_from(entries).where(entries.c.seq > _mark(conn))
        return int(conn.execute(past).scalar_one())


def summary(
    engine: Engine, principal: str | None, since: float | None, by_hour: bool = False
) -> list[dict[str, Any]]:
    """Totals per principal (and hour, with ``by_hour``): rollups, plus the entries not yet folded.

    ``since`` counts whole hours: an hour that started before it is left out.
    """
    start = None if since is None else int(-(-since // 3600) * 3600)
    with engine.connect() as conn:
        mark = _mark(conn)
        q = sa.select(rollups)
        if principal:
            q = q.where(in_subtree(rollups.c.principal, principal))
        if start is not None:
            q = q.where(rollups.c.hour >= start)
        rows = [dict(r._mapping) for r in conn.execute(q)]
        named = entries_named.c
        tail = sa.select(entries_named).where(named.seq > mark, named.kind == "model_call")
        if principal:
            tail = tail.where(in_subtree(named.principal, principal))
        if start is not None:
            tail = tail.where(named.ts >= start)
        for e in conn.execute(tail).mappings():
            rows.append(
                {
                    "hour": int(e["ts"] // 3600 * 3600),
                    "principal": e["principal"],
                    "model": e["served_model"] or e["model"] or "",
                    "requests": 1,
                    "errors": int(e["status"] >= 400),
                    "input_tokens": e["input_tokens"],
                    "cached_tokens": e["cached_tokens"],
                    "output_tokens": e["output_tokens"],
                    "cost_usd": e["cost_usd"],
                }
            )
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (r["principal"], r["hour"]) if by_hour else (r["principal"],)
        into = totals.setdefault(
            key,
            {
                "principal": r["principal"],
                **({"hour": r["hour"]} if by_hour else {}),
                **dict.fromkeys(_COUNTS, 0),
            },
        )
        for c in _COUNTS:
            into[c] += r[c]
    return [totals[k] for k in sorted(totals)]
