"""Operational commands on a running server's admin API: ``keys``, ``ledger``, ``budgets``."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from governd.cli.common import admin, emit, remote, when


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--principal", required=True, help="TEAM or TEAM/PROJECT.")
@click.option("--name", help="A label for the key.")
@click.option("--expires", help="Lifetime, e.g. 30d, 12h.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def keys_create(
    url: str,
    admin_key: str | None,
    principal: str,
    name: str | None,
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    out = admin(url, admin_key).call(
        "POST", "/admin/v1/keys", {"principal": principal, "name": name, "expires": expires}
    )
    if as_json:
        emit({"id": out["id"], "key": out["key"], "principal": out["principal"]})
    else:
        click.echo(f"{out['key']}\n(id {out['id']}, principal {out['principal']}; shown only once)")


@keys.command("list")
@click.option("--principal", help="Only this principal's subtree.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def keys_list(url: str, admin_key: str | None, principal: str | None, as_json: bool) -> None:
    """List keys (never their secrets)."""
    out = admin(url, admin_key).call("GET", "/admin/v1/keys", principal=principal)
    if as_json:
        emit(out)
        return
    for k in out["keys"]:
        state = (
            "revoked"
            if k["revoked_at"]
            else ("expires " + when(k["expires_at"]) if k["expires_at"] else "active")
        )
        click.echo(f"{k['id']}  {k['principal']:<30} {k['name'] or '-':<16} {state}")


@keys.command("revoke")
@click.argument("key_id")
@remote
def keys_revoke(url: str, admin_key: str | None, key_id: str) -> None:
    """Revoke KEY_ID at once."""
    admin(url, admin_key).call("DELETE", f"/admin/v1/keys/{key_id}")
    click.echo(f"revoked {key_id}")


@click.group()
def ledger() -> None:
    """Read the ledger."""


_LEDGER_LINE = (
    "{ts}  {status:>3}  {decision:<8} {principal:<28} {model:<22} {tokens:>13}  ${cost:.6f}  {id}"
)


def _print_entry(e: dict[str, Any]) -> None:
    tokens = f"{e['input_tokens']}/{e['cached_tokens']}/{e['output_tokens']}"
    click.echo(
        _LEDGER_LINE.format(
            ts=when(e["ts"]),
            status=e["status"],
            decision=e["decision"],
            principal=e["principal"] or "-",
            model=e["model"] or "-",
            tokens=tokens,
            cost=e["cost_usd"],
            id=e["id"],
        )
    )


@ledger.command("tail")
@click.option("-n", "count", default=20, show_default=True, help="Entries to show first.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries.")
@click.option("--principal", help="Only this principal's subtree.")
@click.option("--run", help="Only this run.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@remote
def ledger_tail(
    url: str,
    admin_key: str | None,
    count: int,
    follow: bool,
    principal: str | None,
    run: str | None,
    as_json: bool,
) -> None:
    """Show the newest entries (tokens are input/cached/output)."""
    client = admin(url, admin_key)
    show = (lambda e: click.echo(json.dumps(e, sort_keys=True))) if as_json else _print_entry
    try:
        page = client.call(
            "GET", "/admin/v1/ledger", principal=principal, run=run, limit=count, order="desc"
        )
        rows = list(reversed(page["entries"]))
        for e in rows:
            show(e)
        last = rows[-1]["seq"] if rows else 0
        while follow:
            time.sleep(1.0)
            page = client.call(
                "GET", "/admin/v1/ledger", principal=principal, run=run, after=last, limit=1000
            )
            for e in page["entries"]:
                show(e)
                last = e["seq"]
    except KeyboardInterrupt:
        pass


@ledger.command("query")
@click.option("--principal", help="Only this principal's subtree.")
@click.option("--run", help="Only this run.")
@click.option("--model", help="Only calls that asked for or were served by this model.")
@click.option(
    "--decision", type=click.Choice(["allow", "deny", "degrade", "queue", "require_approval"])
)
@click.option("--since", help="A duration ago (15m, 2d), epoch seconds or ISO 8601.")
@click.option(
    "--limit", type=int, default=100, show_default=True, help="At most this many (0: all)."
)
@click.option("--jsonl", is_flag=True, help="One JSON object per line (an export).")
@remote
def ledger_query(
    url: str,
    admin_key: str | None,
    principal: str | None,
    run: str | None,
    model: str | None,
    decision: str | None,
    since: str | None,
    limit: int,
    jsonl: bool,
) -> None:
    """Entries matching every filter, oldest first."""
    client = admin(url, admin_key)
    shown, after = 0, None
    while limit == 0 or shown < limit:
        page_size = 1000 if limit == 0 else min(1000, limit - shown)
        page = client.call(
            "GET",
            "/admin/v1/ledger",
            principal=principal,
            run=run,
            model=model,
            decision=decision,
            since=since,
            after=after,
            limit=page_size,
        )
        for e in page["entries"]:
            click.echo(json.dumps(e, sort_keys=True)) if jsonl else _print_entry(e)
        shown += len(page["entries"])
        after = page["next"]
        if after is None:
            break


@click.group()
def budgets() -> None:
    """Show and change budgets at runtime."""


def _money(unit: str, value: float) -> str:
    if unit == "usd":
        return f"${value:,.4f}"
    return f"{value:,.0f} tok" if unit == "tokens" else f"{value:,.4f} dev-h"


@budgets.command("show")
@click.argument("principal", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def budgets_show(url: str, admin_key: str | None, principal: str | None, as_json: bool) -> None:
    """Budgets on PRINCIPAL (TEAM[/PROJECT] or a key id; default the org) and below it."""
    out = admin(url, admin_key).call("GET", "/admin/v1/budgets", principal=principal)
    if as_json:
        emit(
            {
                "budgets": [
                    {
                        k: b[k]
                        for k in (
                            "principal",
                            "unit",
                            "period",
                            "limit",
                            "spent",
                            "reserved",
                            "soft",
                        )
                    }
                    for b in out["budgets"]
                ]
            }
        )
        return
    if not out["budgets"]:
        click.echo("no budgets")
    for b in out["budgets"]:
        unit = b["unit"]
        used = (b["spent"] / b["limit"] * 100) if b["limit"] else 100.0
        soft = f"soft {b['soft']:.0%}" if b["soft"] else ""
        if b.get("overage"):
            soft += f"  OVERBILLED {_money(unit, b['overage'])} (upstream past its bound)"
        click.echo(
            f"{b['principal']:<34} {unit:>6}/{b['period']:<5} limit {_money(unit, b['limit']):>14}  "
            f"spent {_money(unit, b['spent']):>14} ({used:5.1f}%)  reserved {_money(unit, b['reserved']):>12}  {soft}"
        )


@budgets.command("set")
@click.argument("principal")
@click.option("--usd", type=float, help="Limit in US dollars.")
@click.option("--tokens", type=int, help="Limit in tokens (input + output).")
@click.option("--device-hours", type=float, help="Limit in accelerator device-hours (GPU jobs).")
@click.option("--period", type=click.Choice(["hour", "day", "week", "month"]), required=True)
@click.option("--soft", type=float, help="Soft threshold, a fraction of the limit (e.g. 0.8).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def budgets_set(
    url: str,
    admin_key: str | None,
    principal: str,
    usd: float | None,
    tokens: int | None,
    device_hours: float | None,
    period: str,
    soft: float | None,
    as_json: bool,
) -> None:
    """Set PRINCIPAL's budget for a period (stored; recorded in the ledger)."""
    given = {"usd": usd, "tokens": tokens, "device_hours": device_hours}
    chosen = [(unit, float(v)) for unit, v in given.items() if v is not None]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --usd, --tokens or --device-hours")
    unit, limit = chosen[0]
    body = {"principal": principal, "unit": unit, "period": period, "limit": limit, "soft": soft}
    out = admin(url, admin_key).call("PUT", "/admin/v1/budgets", body)
    if as_json:
        emit(out)
    else:
        click.echo(
            f"{out['principal']} {unit}/{period}: limit {_money(unit, out['limit'])}, "
            f"spent {_money(unit, out['spent'])} this {period}"
        )
