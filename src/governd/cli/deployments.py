"""``governd deployments``: which deployments are in rotation, and clearing a tripped one."""

from __future__ import annotations

from urllib.parse import quote

import click

from governd.cli.common import admin, emit, remote

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def deployments() -> None:
    """Deployments: taken out of rotation when their upstream bills past a call's bound."""


@deployments.command("list")
@_JSON
@remote
def deployments_list(url: str, admin_key: str | None, as_json: bool) -> None:
    """Every deployment, and why it is tripped."""
    out = admin(url, admin_key).call("GET", "/admin/v1/deployments")
    if as_json:
        emit(out)
        return
    for d in out["deployments"]:
        click.echo(f"{d['deployment']:<32} {'TRIPPED: ' + d['tripped'] if d['tripped'] else 'ok'}")


@deployments.command("clear")
@click.argument("deployment")
@click.option("--by", default="admin", show_default=True, help="Who clears it (recorded).")
@remote
def deployments_clear(url: str, admin_key: str | None, deployment: str, by: str) -> None:
    """Put DEPLOYMENT (upstream/model) back in rotation once its upstream is fixed."""
    path = f"/admin/v1/deployments/{quote(deployment, safe='/')}/clear?by={quote(by)}"
    out = admin(url, admin_key).call("POST", path)
    click.echo(f"{deployment} back in rotation (was: {out['was']})")
