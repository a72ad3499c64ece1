"""The ``governd`` command.

``serve`` and ``demo`` run things; ``config check`` works on files; the
operational commands (``keys``, ``ledger``) talk to a running server's admin
API at ``--url`` / ``GOVERND_URL`` with ``--admin-key`` / ``GOVERND_ADMIN_KEY``.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from governd.admin_client import DEFAULT_URL, AdminClient, AdminError
from governd.config import ConfigError, load_config


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _admin(url: str, admin_key: str | None) -> AdminClient:
    if not admin_key:
        raise click.ClickException("no admin key: pass --admin-key or set GOVERND_ADMIN_KEY")
    return AdminClient(url, admin_key)


def _fail(exc: AdminError) -> None:
    raise click.ClickException(str(exc))


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


@click.group()
@click.version_option(package_name="governd")
def main() -> None:
    """governd: govern AI workloads (model calls, tool calls, GPU jobs)."""


@main.command()
@click.option(
    "--config",
    "config_path",
    envvar="GOVERND_CONFIG",
    type=click.Path(dir_okay=False),
    help="governd.yaml (env GOVERND_CONFIG); embedded defaults if absent.",
)
@click.option("--host", help="Listen address (default from config: 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (default from config: 8420).")
def serve(config_path: str | None, host: str | None, port: int | None) -> None:
    """Run the gateway."""
    from governd.serve import run

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(_config_report(exc)) from None
    run(cfg, host or cfg.server.host, port or cfg.server.port)


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Config to run the demo on (default: the embedded defaults).",
)
@click.option("--requests", "total", default=240, show_default=True, help="Requests to send.")
def demo(config_path: str | None, total: int) -> None:
    """Run a short multi-tenant workload end to end and show what it cost."""
    from governd.demo import run_demo

    sys.exit(run_demo(config_path, total))


@main.group()
def config() -> None:
    """Check configuration files."""


def _config_report(exc: ConfigError) -> str:
    lines = [f"{exc.source}: {len(exc.problems)} problem(s)"]
    lines += [f"  {p}" for p in exc.problems]
    return "\n".join(lines)


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE; exit 1 listing every problem with its path and line."""
    try:
        cfg = load_config(file)
    except ConfigError as exc:
        raise click.ClickException(_config_report(exc)) from None
    click.echo(
        f"{file}: ok ({len(cfg.upstreams)} upstreams, {len(cfg.models)} models, "
        f"{len(cfg.principals.teams)} teams)"
    )


@main.group()
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
    try:
        out = _admin(url, admin_key).call(
            "POST", "/admin/v1/keys", {"principal": principal, "name": name, "expires": expires}
        )
    except AdminError as exc:
        _fail(exc)
    if as_json:
        _emit({"id": out["id"], "key": out["key"], "principal": out["principal"]})
    else:
        click.echo(f"{out['key']}\n(id {out['id']}, principal {out['principal']}; shown only once)")


@keys.command("list")
@click.option("--principal", help="Only this principal's subtree.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def keys_list(url: str, admin_key: str | None, principal: str | None, as_json: bool) -> None:
    """List keys (never their secrets)."""
    try:
        out = _admin(url, admin_key).call("GET", "/admin/v1/keys", principal=principal)
    except AdminError as exc:
        _fail(exc)
    if as_json:
        _emit(out)
        return
    for k in out["keys"]:
        state = (
            "revoked"
            if k["revoked_at"]
            else ("expires " + _when(k["expires_at"]) if k["expires_at"] else "active")
        )
        click.echo(f"{k['id']}  {k['principal']:<30} {k['name'] or '-':<16} {state}")


@keys.command("revoke")
@click.argument("key_id")
@remote
def keys_revoke(url: str, admin_key: str | None, key_id: str) -> None:
    """Revoke KEY_ID at once."""
    try:
        _admin(url, admin_key).call("DELETE", f"/admin/v1/keys/{key_id}")
    except AdminError as exc:
        _fail(exc)
    click.echo(f"revoked {key_id}")


@main.group()
def ledger() -> None:
    """Read the ledger."""


_LEDGER_LINE = (
    "{ts}  {status:>3}  {decision:<8} {principal:<28} {model:<22} {tokens:>13}  ${cost:.6f}  {id}"
)


def _print_entry(e: dict[str, Any]) -> None:
    tokens = f"{e['input_tokens']}/{e['cached_tokens']}/{e['output_tokens']}"
    click.echo(
        _LEDGER_LINE.format(
            ts=_when(e["ts"]),
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
    client = _admin(url, admin_key)
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
    except AdminError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        pass


@main.group()
def budgets() -> None:
    """Show and change budgets at runtime."""


def _money(unit: str, value: float) -> str:
    return f"${value:,.4f}" if unit == "usd" else f"{value:,.0f} tok"


@budgets.command("show")
@click.argument("principal", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def budgets_show(url: str, admin_key: str | None, principal: str | None, as_json: bool) -> None:
    """Budgets on PRINCIPAL (TEAM[/PROJECT] or a key id; default the org) and below it."""
    try:
        out = _admin(url, admin_key).call("GET", "/admin/v1/budgets", principal=principal)
    except AdminError as exc:
        _fail(exc)
    if as_json:
        _emit(
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
        click.echo(
            f"{b['principal']:<34} {unit:>6}/{b['period']:<5} limit {_money(unit, b['limit']):>14}  "
            f"spent {_money(unit, b['spent']):>14} ({used:5.1f}%)  reserved {_money(unit, b['reserved']):>12}  {soft}"
        )


@budgets.command("set")
@click.argument("principal")
@click.option("--usd", type=float, help="Limit in US dollars.")
@click.option("--tokens", type=int, help="Limit in tokens (input + output).")
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
    period: str,
    soft: float | None,
    as_json: bool,
) -> None:
    """Set PRINCIPAL's budget for a period (stored; recorded in the ledger)."""
    if (usd is None) == (tokens is None):
        raise click.UsageError("give exactly one of --usd or --tokens")
    unit, limit = ("usd", usd) if usd is not None else ("tokens", float(tokens or 0))
    body = {"principal": principal, "unit": unit, "period": period, "limit": limit, "soft": soft}
    try:
        out = _admin(url, admin_key).call("PUT", "/admin/v1/budgets", body)
    except AdminError as exc:
        _fail(exc)
    if as_json:
        _emit(out)
    else:
        click.echo(
            f"{out['principal']} {unit}/{period}: limit {_money(unit, out['limit'])}, "
            f"spent {_money(unit, out['spent'])} this {period}"
        )


@main.group()
def policy() -> None:
    """Test policies."""


@policy.command("test")
@click.argument("file", type=click.Path(dir_okay=False))
def policy_test(file: str) -> None:
    """Run the cases in FILE against its config's policies; exit 1 if any case fails."""
    from governd.governance.policy_cases import run_cases

    try:
        outcomes = run_cases(Path(file))
    except ConfigError as exc:
        raise click.ClickException(_config_report(exc)) from None
    failed = 0
    for o in outcomes:
        mark = "ok  " if o.passed else "FAIL"
        click.echo(
            f"{mark} {o.case.name}: {o.decision.effect} ({'; '.join(o.decision.reasons) or 'no policy'})"
        )
        for problem in o.problems:
            click.echo(f"       {problem}")
        failed += not o.passed
    click.echo(f"{len(outcomes) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@main.group()
def audit() -> None:
    """Verify the ledger's integrity (works on the storage directly; no server needed)."""


_audit_opts = [
    click.option(
        "--config",
        "config_path",
        envvar="GOVERND_CONFIG",
        type=click.Path(dir_okay=False),
        help="governd.yaml whose ledger to read (env GOVERND_CONFIG).",
    ),
    click.option(
        "--storage", help="Ledger URL, overriding the config (e.g. sqlite:///governd.db)."
    ),
    click.option(
        "--public-key", "public_keys", multiple=True, help="Also trust this hex Ed25519 public key."
    ),
]


def audited(fn: Any) -> Any:
    """Give a command ``--config``, ``--storage`` and ``--public-key``."""
    for opt in reversed(_audit_opts):
        fn = opt(fn)
    return fn


def _ledger(
    config_path: str | None, storage: str | None, keys: tuple[str, ...]
) -> tuple[Any, dict[str, str]]:
    from governd.ledger.audit import open_ledger, trusted_keys

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(_config_report(exc)) from None
    if storage:
        from governd.config import resolve_storage

        cfg = cfg.model_copy(update={"storage": resolve_storage(storage, Path.cwd())})
    try:
        return open_ledger(cfg.storage), trusted_keys(cfg, keys)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@audit.command("verify")
@audited
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def audit_verify(
    config_path: str | None, storage: str | None, public_keys: tuple[str, ...], as_json: bool
) -> None:
    """Check the hash chain and every signed checkpoint; exit 0 only when intact."""
    from governd.ledger.audit import verify_ledger

    engine, keys = _ledger(config_path, storage, public_keys)
    report = verify_ledger(engine, keys)
    if as_json:
        _emit(
            {
                "intact": report.intact,
                "entries": report.entries,
                "checkpoints": report.checkpoints,
                "problems": report.problems,
            }
        )
    elif report.intact:
        click.echo(f"intact: {report.entries} entries, {report.checkpoints} signed checkpoints")
    else:
        for problem in report.problems:
            click.echo(f"TAMPERED: {problem}")
    sys.exit(0 if report.intact else 1)


@audit.command("proof")
@click.argument("entry_id")
@audited
def audit_proof(
    entry_id: str, config_path: str | None, storage: str | None, public_keys: tuple[str, ...]
) -> None:
    """Print an inclusion proof of ENTRY_ID against the latest checkpoint (JSON)."""
    from governd.ledger.audit import inclusion_proof

    engine, _ = _ledger(config_path, storage, public_keys)
    try:
        _emit(inclusion_proof(engine, entry_id))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


@audit.command("verify-proof")
@click.argument("file", type=click.File("r"))
@audited
def audit_verify_proof(
    file: Any, config_path: str | None, storage: str | None, public_keys: tuple[str, ...]
) -> None:
    """Check a proof from `audit proof` against its signed checkpoint; exit 0 only when it holds."""
    from governd.ledger.audit import trusted_keys, verify_proof

    try:
        proof = json.load(file)
        cfg = load_config(config_path)
    except (ValueError, ConfigError) as exc:
        raise click.ClickException(f"cannot read the proof or config: {exc}") from None
    try:
        problems = verify_proof(proof, trusted_keys(cfg, public_keys))
    except (KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"malformed proof: {exc}") from None
    if problems:
        for problem in problems:
            click.echo(f"INVALID: {problem}")
        sys.exit(1)
    click.echo(
        f"valid: entry {proof['entry_id']} is leaf {proof['leaf_index']} of the signed tree of "
        f"{proof['checkpoint']['size']} entries"
    )


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
    client = _admin(url, admin_key)
    shown, after = 0, None
    try:
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
    except AdminError as exc:
        _fail(exc)


@main.group()
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
        out = _admin(url, admin_key).call("GET", "/admin/v1/approvals", status=status)
    except AdminError as exc:
        _fail(exc)
    if as_json:
        _emit(out)
        return
    for a in out["approvals"]:
        click.echo(
            f"{a['id']}  {_when(a['created_at'])}  {a['principal']:<28} {a['tool']:<28} "
            f"{a['tier']:<11} {a['status']:<8} {a['arguments']}"
        )


def _decide(url: str, admin_key: str | None, approval_id: str, verb: str, by: str | None) -> None:
    try:
        row = _admin(url, admin_key).call(
            "POST", f"/admin/v1/approvals/{approval_id}/{verb}", {"by": by or "admin"}
        )
    except AdminError as exc:
        _fail(exc)
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


@main.group("tools")
def tools_group() -> None:
    """MCP tools: tiers, pins, quarantines."""


@tools_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def tools_list(url: str, admin_key: str | None, as_json: bool) -> None:
    """Every upstream tool with its risk tier and pin status."""
    try:
        out = _admin(url, admin_key).call("GET", "/admin/v1/tools")
    except AdminError as exc:
        _fail(exc)
    if as_json:
        _emit(out)
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
        pin = _admin(url, admin_key).call(
            "POST", f"/admin/v1/tools/{name}/approve", {"by": by or "admin"}
        )
    except AdminError as exc:
        _fail(exc)
    click.echo(f"{pin['tool']}: {pin['status']} ({pin['reason']})")
