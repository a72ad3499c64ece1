"""``governd slos``: where a server's SLOs stand (``list``, ``show``), and ``backtest`` (no server)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import click

from governd.cli.common import admin, budget_left, emit, remote, when
from governd.cli.local import config_option, ledger_config, on_ledger
from governd.config import load_config
from governd.config.slos import SloConfig
from governd.controllers.slo_policies import PolicyBook, Step
from governd.durations import format_duration
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.alerts import summary
from governd.ledger.slos.backtest import Counted, ledger_entries, read_counts, replay
from governd.ledger.slos.evaluator import SloEvaluator, Transition


@click.group()
def slos() -> None:
    """SLOs and their error budgets."""


@slos.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def slos_list(url: str, admin_key: str | None, as_json: bool) -> None:
    """Every SLO: objective, window, the budget left and the alerts firing, per group."""
    out = admin(url, admin_key).call("GET", "/admin/v1/slos")
    if as_json:
        emit(out)
        return
    if not out["slos"]:
        click.echo("no SLOs: the server's config has no `slos:`")
    for slo in out["slos"]:
        head = f"{slo['name']}  {slo['objective']:g}% over {format_duration(slo['window_s'])}"
        click.echo(head + ("  NO DATA" if slo["no_data"] else ""))
        for g in slo["groups"]:
            click.echo("  " + _group_line(g))


@slos.command("show")
@click.argument("name")
@click.option("--limit", type=int, default=20, show_default=True, help="Transitions shown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def slos_show(url: str, admin_key: str | None, name: str, limit: int, as_json: bool) -> None:
    """One SLO: its indicator, alert rules, groups and latest alert transitions."""
    out = admin(url, admin_key).call("GET", f"/admin/v1/slos/{quote(name, safe='')}", limit=limit)
    if as_json:
        emit(out)
        return
    indicator = out["sli"] or " ".join(
        f"{k}: {out[k]}" for k in ("filter", "bad", "good") if out[k]
    )
    click.echo(
        f"{out['name']}: {out['objective']:g}% of {out['kind']} over {format_duration(out['window_s'])}"
    )
    click.echo(
        f"  indicator  {indicator}" + (f" > {out['threshold']:g}" if out["threshold"] else "")
    )
    for r in out["rules"]:
        click.echo(
            f"  {r['severity']:<8}  {format_duration(r['long_s'])}/{format_duration(r['short_s'])}"
            f" burn > {r['factor']:.3g}"
        )
    for g in out["groups"]:
        click.echo("  " + _group_line(g))
    for p in out["policies"]:
        click.echo(
            f"  policy    on {p['when'] or 'budget below ' + str(p['remaining_below'])}: {p['do']}"
        )
    for f in out["in_force"]:
        click.echo(f"  IN FORCE  {f['describe']} (since {when(f['at'])})")
    for t in out["transitions"]:
        click.echo(f"  {when(t['at'])}  {t['severity']:<8}  {t['state']}")
    for a in out["actions"]:
        click.echo(f"  {when(a['at'])}  {a['action']:<8}  {a['state']} ({a['target']})")


def _group_line(g: dict[str, Any]) -> str:
    group = " ".join(f"{k}={v}" for k, v in g["group"].items()) or "(all)"
    burns = " ".join(f"{format_duration(w['window_s'])}={w['burn']:.2f}" for w in g["windows"])
    firing = f"  FIRING {', '.join(g['firing'])}" if g["firing"] else ""
    return f"{group}  {budget_left(g['remaining'])}  burn {burns}{firing}"


@slos.command("rules")
@click.option("--slo", "name", help="Only this SLO.")
@click.option(
    "--slo-file",
    type=click.Path(dir_okay=False, exists=True),
    help="SLOs from this YAML (`slos: [...]`) instead of the config's.",
)
@config_option
def rules(name: str | None, slo_file: str | None, config_path: str | None) -> None:
    """Print the SLOs as Prometheus recording and alerting rules (check: promtool check rules)."""
    from governd.observe.slo_rules import render

    found = load_config(slo_file or config_path).slos
    click.echo(render(_chosen(list(found), name)), nl=False)


@slos.command("backtest")
@click.option("--slo", "name", help="Only this SLO (needed with --events when several exist).")
@click.option("--ledger", "from_ledger", is_flag=True, help="Replay the ledger's entries.")
@click.option(
    "--events",
    type=click.Path(dir_okay=False, exists=True),
    help='Replay counts from JSONL: {"ts": epoch or RFC 3339, "good": N, "bad": M} per line.',
)
@click.option(
    "--slo-file",
    type=click.Path(dir_okay=False, exists=True),
    help="SLOs from this YAML (`slos: [...]`) instead of the config's.",
)
@on_ledger
@click.option("--since", type=float, help="With --ledger: entries from this epoch time on.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per transition and line.")
def backtest(
    name: str | None,
    from_ledger: bool,
    events: str | None,
    slo_file: str | None,
    config_path: str | None,
    storage: str | None,
    since: float | None,
    as_json: bool,
) -> None:
    """Print every alert the SLOs would have fired and resolved over recorded outcomes."""
    if from_ledger == (events is not None):
        raise click.UsageError("give one of --ledger or --events")
    cfg = ledger_config(config_path, storage)
    chosen = _chosen(list(load_config(slo_file).slos if slo_file else cfg.slos), name)
    if events is not None and len(chosen) != 1:
        raise click.UsageError(
            f"--events counts belong to one SLO: pick it with --slo ({_names(chosen)})"
        )
    if from_ledger:
        source: Iterable[LedgerEntry | Counted] = _entries(cfg.storage, since)
    else:
        assert events is not None
        source = _counts(events)
    seen = _Seen(source)
    found = 0
    books: list[PolicyBook] = []

    def policies(evaluator: SloEvaluator, now: float) -> list[Step]:
        if not books:
            books.append(PolicyBook(evaluator, cfg.principals.org))
        return books[0].step(now)

    acting = policies if any(slo.policies for slo in chosen) else None
    try:
        for change in replay(chosen, seen, acting):
            click.echo(json.dumps(_as_json(change)) if as_json else _line(change))
            found += 1
    except ValueError as exc:
        raise click.ClickException(f"{events}: {exc}") from None
    if not as_json:  # JSON output stays one transition per line
        span = f" from {when(seen.first)} to {when(seen.last)}" if seen.count else ""
        click.echo(f"{seen.count:,} events replayed{span}: {found} transitions and actions")


class _Seen:
    """The events replayed: how many, and the first and last time."""

    def __init__(self, events: Iterable[LedgerEntry | Counted]) -> None:
        self._events = events
        self.count = 0
        self.first = self.last = 0.0

    def __iter__(self) -> Iterator[LedgerEntry | Counted]:
        for event in self._events:
            if not self.count:
                self.first = event.ts
            self.count += 1
            self.last = event.ts
            yield event


def _chosen(found: list[SloConfig], name: str | None) -> list[SloConfig]:
    if not found:
        raise click.UsageError("no SLOs: the config has no `slos:` (or give --slo-file)")
    if name is None:
        return found
    picked = [slo for slo in found if slo.name == name]
    if not picked:
        raise click.UsageError(f"no SLO named {name!r} (there are: {_names(found)})")
    return picked


def _names(found: list[SloConfig]) -> str:
    return ", ".join(slo.name for slo in found)


def _counts(path: str) -> Iterator[Counted]:
    with open(path, "rb") as lines:
        yield from read_counts(lines)


def _entries(url: str, since: float | None) -> Iterator[LedgerEntry]:
    from governd.ledger.audit import open_ledger

    try:
        engine = open_ledger(url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield from ledger_entries(engine, since)
    finally:
        engine.dispose()


def _as_json(change: Transition | Step) -> dict[str, Any]:
    kind = "alert" if isinstance(change, Transition) else "action"
    return {"type": kind, **change.as_dict(), "time": when(change.at)}


def _line(change: Transition | Step) -> str:
    if isinstance(change, Step):
        return f"{when(change.at)}  {'action':<8}  {change.state:<8}  {change.summary()}"
    return f"{when(change.at)}  {change.severity:<8}  {change.state:<8}  {summary(change)}"
