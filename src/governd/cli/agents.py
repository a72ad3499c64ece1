"""Commands for agents on a running server: ``approvals``, ``tools``, ``runs``."""

from __future__ import annotations

import click

from governd.admin_client import AdminError
from governd.cli.common import admin, emit, fail, remote, when


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
    try:
        out = admin(url, admin_key).call("GET", "/admin/v1/approvals", status=status)
    except AdminError as exc:
        fail(exc)
    if as_json:
        emit(out)
        return
    for a in out["approvals"]:
        click.echo(
            f"{a['id']}  {when(a['created_at'])}  {a['principal']:<28} {a['tool']:<28} "
            f"{a['tier']:<11} {a['status']:<8} {a['arguments']}"
        )


def _decide(url: str, admin_key: str | None, approval_id: str, verb: str, by: str | None) -> None:
    try:
        row = admin(url, admin_key).call(
            "POST", f"/admin/v1/approvals/{approval_id}/{verb}", {"by": by or "admin"}
        )
    except AdminError as exc:
        fail(exc)
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
    try:
        out = admin(url, admin_key).call("GET", "/admin/v1/tools")
    except AdminError as exc:
        fail(exc)
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
    try:
        pin = admin(url, admin_key).call(
            "POST", f"/admin/v1/tools/{name}/approve", {"by": by or "admin"}
        )
    except AdminError as exc:
        fail(exc)
    click.echo(f"{pin['tool']}: {pin['status']} ({pin['reason']})")
