"""Commands for agents on a running server: ``approvals``, ``tools``, ``runs``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from governd.cli.common import admin, emit, remote, when


@click.group()
def approvals() -> None:
    """List and decide tool calls held for approval."""


@approvals.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "approved", "denied", "expired"]),
    default="pending",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def approvals_list(url: str, admin_key: str | None, status: str, as_json: bool) -> None:
    """Approvals with STATUS (pending by default)."""
    out = admin(url, admin_key).call("GET", "/admin/v1/approvals", status=status)
    if as_json:
        emit(out)
        return
    for a in out["approvals"]:
        click.echo(
            f"{a['id']}  {when(a['created_at'])}  {a['principal']:<28} {a['tool']:<28} "
            f"{a['tier']:<11} {a['status']:<8} {a['arguments']}"
        )


def _decide(url: str, admin_key: str | None, approval_id: str, verb: str, by: str | None) -> None:
    row = admin(url, admin_key).call(
        "POST", f"/admin/v1/approvals/{approval_id}/{verb}", {"by": by or "admin"}
    )
    click.echo(f"{row['id']}: {row['status']} by {row['decided_by']}")


@approvals.command("approve")
@click.argument("approval_id")
@click.option("--by", help="Who approves (recorded in the ledger).")
@remote
def approvals_approve(url: str, admin_key: str | None, approval_id: str, by: str | None) -> None:
    """Approve APPROVAL_ID: the held call runs."""
    _decide(url, admin_key, approval_id, "approve", by)


@approvals.command("deny")
@click.argument("approval_id")
@click.option("--by", help="Who denies (recorded in the ledger).")
@remote
def approvals_deny(url: str, admin_key: str | None, approval_id: str, by: str | None) -> None:
    """Deny APPROVAL_ID: the held call is refused."""
    _decide(url, admin_key, approval_id, "deny", by)


@click.group("tools")
def tools_group() -> None:
    """MCP tools: tiers, pins, quarantines."""


@tools_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def tools_list(url: str, admin_key: str | None, as_json: bool) -> None:
    """Every upstream tool with its risk tier and pin status."""
    out = admin(url, admin_key).call("GET", "/admin/v1/tools")
    if as_json:
        emit(out)
        return
    for t in out["tools"]:
        click.echo(f"{t['name']:<36} {t['tier']:<11} {t['status']:<12} {t['reason'] or ''}")


@tools_group.command("approve")
@click.argument("name")
@click.option("--by", help="Who approves (recorded in the ledger).")
@remote
def tools_approve(url: str, admin_key: str | None, name: str, by: str | None) -> None:
    """Trust the current version of quarantined tool NAME."""
    pin = admin(url, admin_key).call(
        "POST", f"/admin/v1/tools/{name}/approve", {"by": by or "admin"}
    )
    click.echo(f"{pin['tool']}: {pin['status']} ({pin['reason']})")


@click.group()
def runs() -> None:
    """Agent runs: their limits, risk and timeline."""


@runs.command("list")
@click.option("--principal", help="Only runs in this TEAM[/PROJECT] subtree.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def runs_list(
    url: str, admin_key: str | None, principal: str | None, limit: int, as_json: bool
) -> None:
    """The most recently active runs."""
    out = admin(url, admin_key).call("GET", "/admin/v1/runs", principal=principal, limit=limit)
    if as_json:
        emit(out)
        return
    for r in out["runs"]:
        click.echo(
            f"{r['run']:<28} {r['principal']:<28} {when(r['last'])}  {r['entries']:>5} entries "
            f"{r['tool_calls']:>4} tool calls {r['refused']:>4} refused  ${r['cost_usd']:.6f}"
        )


def _state_line(p: dict[str, Any]) -> str:
    if "steps" not in p:
        return f"{p['principal']}: no live state"
    limits = p["limits"]
    steps = f"{p['steps']}" + (f"/{limits['steps']}" if limits["steps"] else "")
    tools = f"{p['tool_calls']}" + (f"/{limits['tool_calls']}" if limits["tool_calls"] else "")
    usd = f"${p['spent_usd']:.6f}" + (f"/${limits['usd']:g}" if limits["usd"] else "")
    level = f" (level {p['level']})" if p["level"] else ""
    return f"{p['principal']}: {steps} steps, {tools} tool calls, {usd}, risk {p['risk']:g}{level}"


def _timeline_line(e: dict[str, Any], start: float) -> str:
    signals = json.loads(e["signals"]) if e.get("signals") else {}
    risk = signals.get("risk") or {}
    what = e["model"] or e["operation"]
    extra = []
    if e["kind"] == "tool_call":
        extra.append(f"{signals.get('side_effect', '-')}")
        if signals.get("target"):
            extra.append(f"target={signals['target']}")
    if risk.get("points"):
        extra.append(f"risk +{risk['points']:g} ({', '.join(risk['events'])})")
    if e["kind"] == "control":
        extra.append(e["reasons"])
    elif e["error_code"]:
        extra.append(e["error_code"])
    return (
        f"+{e['ts'] - start:>8.3f}s  {e['kind']:<10} {what:<28} {e['decision']:<16} "
        f"{e['status']:>3}  ${e['cost_usd']:.6f}  {'  '.join(extra)}"
    )


@runs.command("show")
@click.argument("run_id")
@click.option("--principal", help="Only this TEAM[/PROJECT] subtree's part of the run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def runs_show(
    url: str, admin_key: str | None, run_id: str, principal: str | None, as_json: bool
) -> None:
    """RUN_ID's timeline: each model and tool call with its decision, cost and risk."""
    client = admin(url, admin_key)
    out = client.call("GET", f"/admin/v1/runs/{quote(run_id, safe='')}", principal=principal)
    entries = list(out["entries"])
    while out["next"] is not None:
        out = client.call(
            "GET",
            f"/admin/v1/runs/{quote(run_id, safe='')}",
            principal=principal,
            after=out["next"],
        )
        entries.extend(out["entries"])
    if as_json:
        emit({**out, "entries": entries, "next": None})
        return
    click.echo(f"run {run_id}")
    for p in out["principals"]:
        click.echo("  " + _state_line(p))
    start = entries[0]["ts"] if entries else 0.0
    for e in entries:
        click.echo("  " + _timeline_line(e, start))
