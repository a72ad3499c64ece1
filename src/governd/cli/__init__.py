"""The ``governd`` command.

``serve`` and ``demo`` run things; ``config check``, ``policy test``,
``audit`` and ``slos backtest`` work on files; the operational commands (``keys``, ``ledger``,
``budgets``, ``approvals``, ``tools``, ``runs``, ``jobs``, ``slos``, ``releases``, ``deployments``) talk to a running server's
admin API at ``--url`` / ``GOVERND_URL`` with ``--admin-key`` /
``GOVERND_ADMIN_KEY``.
"""

from __future__ import annotations

import os
from typing import Any

import click

from governd.cli import admin, agents, deployments, explain, jobs, local, releases, slos
from governd.config import ConfigError
from governd.errors import GovernError


class _Guarded(click.Group):
    """The command group: whatever fails, a user reads one line saying what, never a traceback.

    ``GOVERND_DEBUG=1`` lets an unexpected error through with its traceback, for a bug report.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(local.config_report(exc)) from None
        except GovernError as exc:
            raise click.ClickException(exc.message) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("GOVERND_DEBUG"):
                raise
            raise click.ClickException(
                f"{type(exc).__name__}: {exc} (GOVERND_DEBUG=1 shows where)"
            ) from None


@click.group(cls=_Guarded)
@click.version_option(package_name="governd")
def main() -> None:
    """governd: govern AI workloads (model calls, tool calls, GPU jobs)."""


for command in (
    local.serve,
    local.demo,
    local.config,
    local.policy,
    local.audit,
    admin.keys,
    admin.ledger,
    admin.budgets,
    agents.approvals,
    agents.tools_group,
    agents.runs,
    jobs.jobs,
    slos.slos,
    releases.releases,
    deployments.deployments,
    explain.explain,
):
    main.add_command(command)
