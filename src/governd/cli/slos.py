"""``governd slos``: replay outcomes through the SLO evaluator (``backtest``, no server needed)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import click

from governd.cli.common import when
from governd.cli.local import ledger_config, on_ledger
from governd.config import load_config
from governd.config.slos import SloConfig
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.backtest import Counted, ledger_entries, read_counts, replay
from governd.ledger.slos.evaluator import Transition


@click.group()
def slos() -> None:
    """SLOs and their error budgets."""


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
    try:
        for transition in replay(chosen, seen):
            click.echo(json.dumps(_as_json(transition)) if as_json else _line(transition))
            found += 1
    except ValueError as exc:
        raise click.ClickException(f"{events}: {exc}") from None
    if not as_json:  # JSON output stays one transition per line
        span = f" from {when(seen.first)} to {when(seen.last)}" if seen.count else ""
        click.echo(f"{seen.count:,} events replayed{span}: {found} transitions")


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


def _as_json(t: Transition) -> dict[str, Any]:
    return {**t.as_dict(), "time": when(t.at)}


def _line(t: Transition) -> str:
    group = " ".join(f"{k}={v}" for k, v in t.group)
    burns = " ".join(f"{_span(w.window)}={w.burn:.2f}" for w in t.windows)
    figures = f"burn {burns}  budget left {t.remaining:.1%}" if t.windows else ""
    return "  ".join(
        part
        for part in (when(t.at), f"{t.severity:<8}", f"{t.state:<8}", t.slo, group, figures)
        if part
    )


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
