"""A real Ray head on 127.0.0.1 with declared GPUs, for tests (``ray start --head --block``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from governd.server.launcher import free_port

#: Ray would swap 127.0.0.1 for the machine's outward address (and traffic stays on loopback
#: here); a test cluster also runs without auth tokens, like every process the tests start.
RAY_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


@contextlib.contextmanager
def ray_head(
    folder: Path, client_port: int | None = None, gcs_port: int | None = None, gpus: int = 8
) -> Iterator[str]:
    """A Ray head serving Ray Client on ``client_port`` (a free one if None); yields its
    ``ray://`` address once a client can connect; kills the whole cluster at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    client_port = client_port or free_port()
    args = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        f"--num-gpus={gpus}",
        "--num-cpus=2",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs_port or free_port()}",
        f"--ray-client-server-port={client_port}",
        # Ray's fixed default ports can be taken by a port another test picked: pick them too.
        *(
            f"--{name}={free_port()}"
            for name in (
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "metrics-export-port",
                "runtime-env-agent-port",
                "node-manager-port",
                "object-manager-port",
            )
        ),
        "--include-dashboard=false",
        "--disable-usage-stats",
        # Ray's socket paths must fit in 107 bytes: a short folder of its own, not ``folder``.
        f"--temp-dir={scratch}",
    ]
    os.environ.update(RAY_LOOPBACK)
    with (folder / "head.log").open("ab") as log:
        head = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        address = f"ray://127.0.0.1:{client_port}"
        wait_for_ray(address, head, folder / "head.log")
        yield address
    finally:
        # A throwaway cluster: its whole process group goes at once (`ray start --block`
        # ignores SIGTERM for 30 s and more).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def wait_for_ray(address: str, head: subprocess.Popen[bytes], log: Path) -> None:
    """Until a Ray client connects to ``address`` (its port opens before the server is ready)."""
    deadline = time.monotonic() + 120
    probe = [sys.executable, "-c", f"import ray; ray.init(address={address!r}); ray.shutdown()"]
    while subprocess.run(probe, capture_output=True, timeout=120).returncode != 0:
        if head.poll() is not None:
            raise RuntimeError(f"Ray did not start:\n{log.read_text(errors='replace')[-4000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("Ray did not start within 120 s")
        time.sleep(0.2)
