"""A real Alertmanager on loopback (Debian's ``prometheus-alertmanager``), for tests and drills."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from governd.server.launcher import Served, free_port, stop, wait_ready

#: Every alert goes to a receiver that sends nothing: the tests read Alertmanager's API.
_CONFIG = """\
route: {receiver: keep, group_wait: 1s, group_interval: 1s}
receivers: [{name: keep}]
"""


@contextlib.contextmanager
def alertmanager(workdir: Path) -> Iterator[Served]:
    """Start Alertmanager (no clustering) on a free port; stop it when the block ends."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        raise RuntimeError(
            "Alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(_CONFIG)
    port = free_port()
    log = workdir / "alertmanager.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, f"{url}/-/ready", log)
        yield Served(url, proc, log)
    finally:
        stop(proc)
