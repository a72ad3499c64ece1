"""The local executor: devices in the environment, output in the log, stop by process group."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from governd.execution.executors import Launch
from governd.execution.executors.local import LocalExecutor
from tests.conftest import alive


def launch(tmp_path: Path, code: str, *args: str) -> Launch:
    return Launch(
        "job_t",
        (sys.executable, "-c", code, *args),
        ("2", "3"),
        ("n:2", "n:3"),
        tmp_path / "logs" / "job_t.log",
        (("MODE", "test"),),
    )


async def test_the_job_sees_its_devices_and_its_output_is_logged(tmp_path: Path) -> None:
    code = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'], os.environ['GOVERND_UNITS'], os.environ['MODE'])"
    run = await LocalExecutor().start(launch(tmp_path, code))
    assert await run.wait() == 0
    log = (tmp_path / "logs" / "job_t.log").read_text().splitlines()
    assert log[0].startswith("--- governd:") and log[0].endswith("CUDA_VISIBLE_DEVICES=2,3")
    assert log[1] == "2,3 n:2,n:3 test"


async def test_stop_kills_what_ignores_sigterm_after_the_grace_period_children_too(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    run = await LocalExecutor().start(launch(tmp_path, code, str(pid_file)))
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    child = int(pid_file.read_text())
    await run.stop(0.2)
    assert await run.wait() == -9
    deadline = time.monotonic() + 10
    while alive(child):  # the whole group went, not just the leader (SIGKILL lands at once)
        assert time.monotonic() < deadline, "the job's child survived"
        await asyncio.sleep(0.02)


async def test_a_command_that_does_not_exist_cannot_start(tmp_path: Path) -> None:
    bad = Launch("job_x", ("/nonexistent/cmd",), ("0",), ("n:0",), tmp_path / "x.log")
    with pytest.raises(OSError):
        await LocalExecutor().start(bad)


async def test_reap_kills_only_a_process_that_runs_that_job(tmp_path: Path) -> None:
    run = await LocalExecutor().start(launch(tmp_path, "import time; time.sleep(600)"))
    assert run.pid is not None
    executor = LocalExecutor()
    assert not executor.reap("job_other", run.pid), "a reused pid is left alone"
    assert not executor.reap("job_t", os.getpid())
    assert executor.reap("job_t", run.pid)
    assert await run.wait() == -9
