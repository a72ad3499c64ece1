"""What the ``governd`` subcommands share: output helpers and the admin API options."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from governd.cli.admin_client import DEFAULT_URL, AdminClient, AdminError


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def budget_left(remaining: float) -> str:
    """An SLO's error budget left, in words (overspent: how many times over)."""
    if remaining >= 0:
        return f"budget left {remaining:.1%}"
    return f"budget overspent {1 - remaining:.1f}x"


class _CliClient(AdminClient):
    """The admin client, failing the command with the server's message."""

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        try:
            return super().call(method, path, body, **query)
        except AdminError as exc:
            raise click.ClickException(str(exc)) from None


def admin(url: str, admin_key: str | None) -> AdminClient:
    """A client of the admin API; a failed call fails the command with the server's message."""
    if not admin_key:
        raise click.ClickException("no admin key: pass --admin-key or set GOVERND_ADMIN_KEY")
    return _CliClient(url, admin_key)


_remote = [
    click.option(
        "--url",
        envvar="GOVERND_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="governd server (env GOVERND_URL).",
    ),
    click.option(
        "--admin-key", envvar="GOVERND_ADMIN_KEY", help="admin key (env GOVERND_ADMIN_KEY)."
    ),
]


def remote(fn: Any) -> Any:
    """Give a command ``--url`` and ``--admin-key``."""
    for opt in reversed(_remote):
        fn = opt(fn)
    return fn
