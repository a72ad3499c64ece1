"""``governd jobs``: submit accelerator jobs and follow them on a running server."""

from __future__ import annotations

from typing import Any

import click

from governd.cli.common import admin, emit, remote, when
from governd.durations import parse_duration

_PRIORITY_HELP = "Priority class (compute.priority_classes; default compute.default_priority)."


@click.group()
def jobs() -> None:
    """Submit, list, show, cancel and read the logs of GPU jobs."""


@jobs.command("submit", context_settings={"ignore_unknown_options": True})
@click.option("--queue", required=True, help="Queue to submit to.")
@click.option("--gpus", type=click.IntRange(1, 1024), required=True, help="Devices, all or none.")
@click.option("--flavor", help="Device flavor (default: the first of the queue's that fits).")
@click.option("--max-runtime", help="Runtime bound, e.g. 90s, 30m, 2h (its budget hold).")
@click.option("--priority", help=_PRIORITY_HELP)
@click.option("--principal", help="On whose behalf: TEAM[/PROJECT] (default: the org).")
@click.option("--env", "env", multiple=True, help="NAME=VALUE for the job (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print {id, status} as JSON.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@remote
def jobs_submit(
    url: str,
    admin_key: str | None,
    queue: str,
    gpus: int,
    flavor: str | None,
    max_runtime: str | None,
    priority: str | None,
    principal: str | None,
    env: tuple[str, ...],
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Queue COMMAND (after --) to run on GPUS devices of QUEUE."""
    body: dict[str, Any] = {"queue": queue, "gpus": gpus, "command": list(command)}
    if flavor:
        body["flavor"] = flavor
    if max_runtime:
        try:
            body["max_runtime_s"] = parse_duration(max_runtime)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--max-runtime") from None
    if priority:
        body["priority"] = priority
    if principal:
        body["principal"] = principal
    pairs = [e.partition("=") for e in env]
    if any(not sep or not name for name, sep, _ in pairs):
        raise click.BadParameter("expected NAME=VALUE", param_hint="--env")
    body["env"] = {name: value for name, _, value in pairs}
    row = admin(url, admin_key).call("POST", "/admin/v1/jobs", body)
    if as_json:
        emit({"id": row["id"], "status": row["status"]})
    else:
        click.echo(f"{row['id']}  {row['status']}  (holds ${row['reserved_usd']:.4f})")


@jobs.command("list")
@click.option("--status", help="One status, or `active` (not finished).")
@click.option("--principal", help="Only this TEAM[/PROJECT] subtree.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def jobs_list(
    url: str,
    admin_key: str | None,
    status: str | None,
    principal: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Jobs, newest first."""
    query = {"status": status, "principal": principal, "limit": limit}
    out = admin(url, admin_key).call(
        "GET", "/admin/v1/jobs", **{k: v for k, v in query.items() if v}
    )
    if as_json:
        emit(out)
        return
    for j in out["jobs"]:
        click.echo(
            f"{j['id']}  {when(j['submitted_at'])}  {j['principal']:<22} {j['queue']:<12} "
            f"{j['gpus']:>3}x{j['flavor'] or '-':<12} {j['priority_class']:<9} {j['status']:<10} "
            f"${j['cost_usd']:.4f}  {j['reason']}"
        )


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def jobs_show(url: str, admin_key: str | None, job_id: str, as_json: bool) -> None:
    """One job: state, devices, wait, runtime, cost and every event."""
    j = admin(url, admin_key).call("GET", f"/admin/v1/jobs/{job_id}")
    if as_json:
        emit(j)
        return
    click.echo(f"{j['id']}  {j['status']}: {j['reason']}")
    click.echo(
        f"  {j['principal']} queue {j['queue']}, {j['gpus']} x {j['flavor'] or 'any flavor'}, "
        f"priority {j['priority_class']} ({j['priority']})"
    )
    click.echo(f"  command: {' '.join(j['command'])}")
    click.echo(f"  units: {', '.join(j['units']) or '-'}")
    click.echo(
        f"  waited {j['queue_wait_s']:.1f} s, ran {j['runtime_s']:.1f} s of {j['max_runtime_s']:g} s, "
        f"{j['device_seconds']:.1f} device-s, ${j['cost_usd']:.4f} of ${j['reserved_usd']:.4f} held, "
        f"{j['preemptions']} preemption(s), exit {j['exit_code'] if j['exit_code'] is not None else '-'}"
    )
    for e in j["events"]:
        click.echo(f"  {when(e['at'])}  {e['event']:<10} {e['detail']}")


@jobs.command("cancel")
@click.argument("job_id")
@remote
def jobs_cancel(url: str, admin_key: str | None, job_id: str) -> None:
    """Cancel JOB_ID (a running one is stopped: SIGTERM, then SIGKILL after compute.grace_s)."""
    j = admin(url, admin_key).call("POST", f"/admin/v1/jobs/{job_id}/cancel")
    click.echo(f"{j['id']}  {j['status']}: {j['reason']}")


@jobs.command("logs")
@click.argument("job_id")
@remote
def jobs_logs(url: str, admin_key: str | None, job_id: str) -> None:
    """JOB_ID's output so far (its last 4 MiB)."""
    click.echo(admin(url, admin_key).call("GET", f"/admin/v1/jobs/{job_id}/logs")["log"], nl=False)


@jobs.command("queues")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def jobs_queues(url: str, admin_key: str | None, as_json: bool) -> None:
    """Per queue and flavor: quota, use, borrowed, still available, jobs waiting."""
    out = admin(url, admin_key).call("GET", "/admin/v1/compute")
    if as_json:
        emit({"queues": out["queues"], "scheduler": out["scheduler"]})
        return
    click.echo(
        f"{'queue':<14} {'cohort':<10} {'flavor':<20} {'nominal':>7} {'used':>5} "
        f"{'borrowed':>8} {'available':>9} {'share':>6} {'waiting':>7}"
    )
    for q in out["queues"]:
        click.echo(
            f"{q['queue']:<14} {q['cohort'] or '-':<10} {q['flavor']:<20} {q['nominal']:>7} "
            f"{q['used']:>5} {q['borrowed']:>8} {q['available']:>9} {q['share']:>6} "
            f"{q['pending_jobs']:>7}"
        )
    sched = out["scheduler"]
    where = "schedules" if sched["here"] else "does not schedule (another replica does)"
    click.echo(f"the replica that answered ({sched['replica']}) {where}")


@jobs.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def jobs_devices(url: str, admin_key: str | None, as_json: bool) -> None:
    """Every device unit: node, flavor, NVLink domain, and the job holding it."""
    out = admin(url, admin_key).call("GET", "/admin/v1/compute")
    if as_json:
        emit({"units": out["units"]})
        return
    for u in out["units"]:
        click.echo(f"{u['id']:<24} {u['flavor']:<20} {u['domain']:<20} {u['job'] or 'free'}")
