"""Commands that work without a server: ``serve``, ``demo``, ``config``, ``policy``, ``audit``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from governd.cli.common import emit
from governd.config import ConfigError, GovernConfig, load_config


@click.command()
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
    from governd.server.serve import run

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(config_report(exc)) from None
    run(cfg, host or cfg.server.host, port or cfg.server.port)


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Config to run the demo on (default: the embedded defaults).",
)
@click.option("--requests", "total", default=240, show_default=True, help="Requests to send.")
def demo(config_path: str | None, total: int) -> None:
    """Run a short multi-tenant workload end to end and show what it cost."""
    from governd.cli.demo import run_demo

    sys.exit(run_demo(config_path, total))


@click.group()
def config() -> None:
    """Check configuration files."""


def config_report(exc: ConfigError) -> str:
    """Every problem of a config, one per line under the file's name."""
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
        raise click.ClickException(config_report(exc)) from None
    click.echo(
        f"{file}: ok ({len(cfg.upstreams)} upstreams, {len(cfg.models)} models, "
        f"{len(cfg.principals.teams)} teams)"
    )


@click.group()
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
        raise click.ClickException(config_report(exc)) from None
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


#: ``audit verify``'s exit status when the chain holds but a checkpoint's key is unknown.
UNVERIFIABLE = 3


@click.group()
def audit() -> None:
    """Verify the ledger's integrity (works on the storage directly; no server needed)."""


#: ``--config``: the governd.yaml a command reads without a server.
config_option = click.option(
    "--config",
    "config_path",
    envvar="GOVERND_CONFIG",
    type=click.Path(dir_okay=False),
    help="governd.yaml to read (env GOVERND_CONFIG).",
)
_ledger_opts = [
    config_option,
    click.option(
        "--storage", help="Ledger URL, overriding the config (e.g. sqlite:///governd.db)."
    ),
]
_public_key = click.option(
    "--public-key", "public_keys", multiple=True, help="Also trust this hex Ed25519 public key."
)


def on_ledger(fn: Any) -> Any:
    """Give a command that reads the ledger ``--config`` and ``--storage``."""
    for opt in reversed(_ledger_opts):
        fn = opt(fn)
    return fn


def audited(fn: Any) -> Any:
    """Give a command ``--config``, ``--storage`` and ``--public-key``."""
    return on_ledger(_public_key(fn))


def ledger_config(config_path: str | None, storage: str | None) -> GovernConfig:
    """The config, its ledger replaced by ``--storage`` when given."""
    cfg = load_config(config_path)
    if storage:
        from governd.config import resolve_storage

        cfg = cfg.model_copy(update={"storage": resolve_storage(storage, Path.cwd())})
    return cfg


def _ledger(
    config_path: str | None, storage: str | None, keys: tuple[str, ...]
) -> tuple[Any, dict[str, str]]:
    from governd.ledger.audit import open_ledger, trusted_keys

    cfg = ledger_config(config_path, storage)
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
    """Check the hash chain and every signed checkpoint.

    Exit 0 when intact and every checkpoint's key is trusted; 1 when anything
    shows tampering (TAMPERED lines); 3 when nothing does but some checkpoint
    is signed by a key not given (config, the key file, or --public-key).
    """
    from governd.ledger.audit import verify_ledger

    engine, keys = _ledger(config_path, storage, public_keys)
    report = verify_ledger(engine, keys)
    if as_json:
        emit(
            {
                "intact": report.intact,
                "verified": report.verified,
                "entries": report.entries,
                "checkpoints": report.checkpoints,
                "problems": report.problems,
                "unverifiable": report.unverifiable,
            }
        )
    else:
        for problem in report.problems:
            click.echo(f"TAMPERED: {problem}")
        for unknown in report.unverifiable:
            click.echo(f"unverifiable: {unknown}")
        if report.verified:
            click.echo(f"intact: {report.entries} entries, {report.checkpoints} signed checkpoints")
    sys.exit(0 if report.verified else 1 if report.problems else UNVERIFIABLE)


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
        emit(inclusion_proof(engine, entry_id))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


@audit.command("verify-proof")
@click.argument("file", type=click.File("r"))
@audited
def audit_verify_proof(
    file: Any, config_path: str | None, storage: str | None, public_keys: tuple[str, ...]
) -> None:
    """Check a proof from `audit proof` against its signed checkpoint.

    Exit 0 when it holds, 1 when it does not (INVALID lines), 3 when its
    checkpoint's key is not trusted (as for `audit verify`).
    """
    from governd.ledger.audit import trusted_keys, verify_proof

    try:
        proof = json.load(file)
        cfg = load_config(config_path)
    except (ValueError, ConfigError) as exc:
        raise click.ClickException(f"cannot read the proof or config: {exc}") from None
    try:
        report = verify_proof(proof, trusted_keys(cfg, public_keys))
    except (KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"malformed proof: {exc}") from None
    for problem in report.problems:
        click.echo(f"INVALID: {problem}")
    for unknown in report.unverifiable:
        click.echo(f"unverifiable: {unknown}")
    if report.verified:
        click.echo(
            f"valid: entry {proof['entry_id']} is leaf {proof['leaf_index']} of the signed tree of "
            f"{proof['checkpoint']['size']} entries"
        )
    sys.exit(0 if report.verified else 1 if report.problems else UNVERIFIABLE)
