"""Every command, run against a config that lacks what it expects: one clear line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from governd.server.launcher import Served, governd_server
from tests.conftest import governd_cli, write_yaml

ADMIN = "adm-bare"
#: An org and nothing else: no teams, models, tools, queues or devices.
BARE = "principals: {org: bare}\n"
#: A ledger that cannot be reached.
UNREACHABLE = "storage: postgresql://127.0.0.1:1/none\n"


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("bare")
    with governd_server(tmp, write_yaml(tmp / "bare.yaml", BARE), ADMIN) as served:
        yield served


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["keys", "create", "--principal", "research/agents"], "unknown principal"),
        (["keys", "revoke", "key_missing"], "key_missing"),
        (["budgets", "set", "research", "--usd", "1", "--period", "day"], "unknown principal"),
        (["budgets", "show", "research"], "unknown principal"),
        (["ledger", "query", "--principal", "research"], "unknown principal"),
        (["approvals", "approve", "apr_missing"], "apr_missing"),
        (["tools", "approve", "files__read"], "files__read"),
        (["runs", "show", "run-missing"], "run-missing"),
        (["jobs", "submit", "--queue", "training", "--gpus", "1", "--", "true"], "training"),
        (["jobs", "show", "job_missing"], "job_missing"),
        (["jobs", "logs", "job_missing"], "job_missing"),
        (["jobs", "cancel", "job_missing"], "job_missing"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else None,
)
def test_admin_commands_name_what_the_config_lacks(
    bare: Served, args: list[str], fragment: str
) -> None:
    out = governd_cli(bare.url, ADMIN, *args)
    assert out.returncode == 1, out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert fragment in out.stderr and out.stderr.startswith("Error: "), out.stderr


@pytest.mark.parametrize(
    "args", [["jobs", "queues"], ["jobs", "devices"], ["tools", "list"], ["runs", "list"]]
)
def test_listings_of_what_a_config_lacks_are_empty_not_errors(
    bare: Served, args: list[str]
) -> None:
    out = governd_cli(bare.url, ADMIN, *args)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["serve", "--config", "{unreachable}", "--port", "9"], "cannot open the ledger"),
        (["audit", "verify", "--config", "{unreachable}"], "cannot open the ledger"),
        (["audit", "proof", "e1", "--config", "{unreachable}"], "cannot open the ledger"),
        (["policy", "test", "{unreachable}"], "config: Field required"),
        (["demo", "--config", "{bare}", "--requests", "5"], "nothing to send"),
        (["config", "check", "{missing}"], "No such file"),
    ],
    ids=lambda a: " ".join(a[:2]) if isinstance(a, list) else None,
)
def test_local_commands_name_what_the_config_lacks(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    files = {
        "unreachable": write_yaml(tmp_path / "unreachable.yaml", UNREACHABLE),
        "bare": write_yaml(tmp_path / "bare.yaml", BARE),
        "missing": tmp_path / "missing.yaml",
    }
    argv = [a.format(**files) for a in args]
    out = subprocess.run(
        [sys.executable, "-m", "governd", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert fragment in out.stderr, out.stderr
    assert "postgresql" not in out.stderr or "127.0.0.1:1/none" in out.stderr
