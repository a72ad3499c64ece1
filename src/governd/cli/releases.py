"""``governd releases``: create, start, watch and steer the releases of a running server."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import yaml

from governd.cli.common import admin, emit, remote, when

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_BY = click.option("--by", default="admin", show_default=True, help="Who does it (recorded).")


@click.group()
def releases() -> None:
    """Releases: model aliases moved from a stable to a canary target in judged steps."""


@releases.command("list")
@_JSON
@remote
def releases_list(url: str, admin_key: str | None, as_json: bool) -> None:
    """Every release: phase, step and weight."""
    out = admin(url, admin_key).call("GET", "/admin/v1/releases")
    if as_json:
        emit(out)
        return
    if not out["releases"]:
        click.echo("no releases")
    for r in out["releases"]:
        click.echo(
            f"{r['name']:<20} {r['model']:<16} {r['phase']:<9} step {r['step']}/{len(r['steps'])}"
            f"  canary {r['weight']:g}%  {r['note']}"
        )


@releases.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_BY
@_JSON
@remote
def releases_create(url: str, admin_key: str | None, file: Path, by: str, as_json: bool) -> None:
    """Create a release from FILE: one `releases:` item, in YAML or JSON."""
    try:
        spec = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{file}: not YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise click.ClickException(f"{file}: a release is a mapping (one `releases:` item)")
    out = admin(url, admin_key).call("POST", "/admin/v1/releases", {**spec, "by": by})
    _show(out, as_json)


@releases.command("status")
@click.argument("name")
@_JSON
@remote
def releases_status(url: str, admin_key: str | None, name: str, as_json: bool) -> None:
    """A release: arms, weights, step, every check's value and verdict, headroom left."""
    _show(admin(url, admin_key).call("GET", f"/admin/v1/releases/{_q(name)}"), as_json)


@releases.command("history")
@click.argument("name")
@click.option("--limit", type=int, default=50, show_default=True)
@_JSON
@remote
def releases_history(url: str, admin_key: str | None, name: str, limit: int, as_json: bool) -> None:
    """A release's recorded changes, oldest first, with who made them."""
    out = admin(url, admin_key).call("GET", f"/admin/v1/releases/{_q(name)}/history", limit=limit)
    if as_json:
        emit(out)
        return
    for h in reversed(out["history"]):
        click.echo(f"{when(h['ts'])}  {h['operation']:<17} {h['by'] or '-':<10} {h['detail']}")


def _command(action: str, help_text: str, **extra: Any) -> Any:
    @click.argument("name")
    @_BY
    @_JSON
    @remote
    def run(
        url: str, admin_key: str | None, name: str, by: str, as_json: bool, **opts: Any
    ) -> None:
        body = {"by": by, **{k: v for k, v in opts.items() if v not in (None, False)}}
        out = admin(url, admin_key).call("POST", f"/admin/v1/releases/{_q(name)}/{action}", body)
        _show(out, as_json)

    run.__doc__ = help_text
    for option in extra.values():
        run = option(run)
    return releases.command(action)(run)


_command("start", "Start a release once its launch gates hold (evidence, safeguards, approvals).")
_command("pause", "Stop a release's steps; traffic stays split as it is.")
_command("resume", "Take a paused release's steps again.")
_command(
    "promote",
    "Take the current step now, unchecked (--full: every step left, to 100%).",
    full=click.option("--full", is_flag=True, help="Promote to 100% at once."),
)
_command(
    "abort",
    "Send every call back to stable (a promoted release is rolled back).",
    reason=click.option("--reason", default=None, help="Why (recorded)."),
)


@releases.command("kill")
@click.option("--model", required=True, help="The model alias.")
@click.option("--reason", default=None, help="Why (recorded).")
@_BY
@_JSON
@remote
def releases_kill(
    url: str, admin_key: str | None, model: str, reason: str | None, by: str, as_json: bool
) -> None:
    """The kill switch: abort every release of a model alias at once."""
    body = {"model": model, "by": by, **({"reason": reason} if reason else {})}
    out = admin(url, admin_key).call("POST", "/admin/v1/releases/kill", body)
    if as_json:
        emit(out)
        return
    names = [r["name"] for r in out["aborted"]]
    click.echo(
        f"aborted {len(names)}: {', '.join(names)}" if names else f"no release of {model} in force"
    )


def _show(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(r)
        return
    click.echo(
        f"{r['name']}: {r['model']} {r['phase']}, step {r['step']} of {len(r['steps'])}, tier {r['tier']}"
    )
    click.echo(f"  {r['note']}")
    for arm, weight in (("canary", r["weight"]), ("stable", 100 - r["weight"])):
        a = r[arm]
        click.echo(
            f"  {arm:<7} {weight:5.1f}%  {a['target']}  events {a['events']:.0f}, errors "
            f"{_pct(a['error_ratio'])}, p95 {_ms(a['p95_latency_ms'])}, {_usd(a['usd_per_call'])}/call"
        )
    for c in r["checks"]:
        click.echo(f"  check    {c['check']:<17} {c['verdict']:<12} {c['why']}")
    for h in r["headroom"]:
        click.echo(f"  headroom {h['check']:<17} {'ok' if h['holds'] else 'SHORT':<12} {h['why']}")
    for i, step in enumerate(r["steps"]):
        mark = ">" if i == r["step"] and r["phase"] not in ("promoted", "aborted") else " "
        click.echo(f"  {mark} step {i}: {_step(step)}")


def _step(step: dict[str, Any]) -> str:
    if "set_weight" in step:
        return f"set_weight {step['set_weight']:g}%"
    if "pause" in step:
        return "pause " + ", ".join(f"{k} {v}" for k, v in step["pause"].items())
    return "analysis"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} ms"


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:.6f}"


def _q(name: str) -> str:
    return quote(name, safe="")
