"""The ``governd`` command.

``serve`` and ``demo`` run things; ``config check``, ``policy test`` and
``audit`` work on files; the operational commands (``keys``, ``ledger``,
``budgets``, ``approvals``, ``tools``, ``runs``, ``jobs``) talk to a running server's
admin API at ``--url`` / ``GOVERND_URL`` with ``--admin-key`` /
``GOVERND_ADMIN_KEY``.
"""

from __future__ import annotations

import click

from governd.cli import admin, agents, jobs, local


@click.group()
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
):
    main.add_command(command)
