"""The Ray executor: each attempt runs in a Ray actor holding the job's GPUs in a placement group.

The placement group has one bundle with all the job's GPUs, packed on one
node (``STRICT_PACK``): a gang gets every device or waits. Inside the actor
the job's command is a process group like the local executor's, so stop is
the same SIGTERM, then SIGKILL after the grace period. Ray picks the GPU ids
on the node and sets ``CUDA_VISIBLE_DEVICES`` for the actor; the job sees
exactly those (governd's own unit ids remain its accounting, in
``GOVERND_UNITS``). The log file is written on the node that runs the job.

``address`` is passed to ``ray.init``: ``ray://HOST:PORT`` (Ray Client) or a
cluster's GCS address; ``None`` starts a Ray in this process with the
inventory's GPU count.

A cluster that goes away (its head dies) loses the attempts on it: each
ends with ``ExecutionLost`` (the job is queued again), and the next start
connects anew, failing as unavailable until the cluster is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from governd.execution.executors.base import (
    ExecutionLost,
    ExecutorUnavailable,
    Launch,
    log_header,
)

#: How long Ray may take to find the GPUs governd admitted the job on (they should be free).
_PLACEMENT_TIMEOUT_S = 60.0


@ray.remote(num_cpus=0, max_concurrency=4)  # type: ignore[call-overload]  # stubs lack actor options
class _JobActor:
    """Runs one attempt's process group on the GPUs Ray gave this actor."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = threading.Event()

    def start(self, launch: Launch) -> str:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        log_path = str(launch.log_path)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(log_header(" on Ray", visible))
            log.flush()
            self._proc = subprocess.Popen(
                launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=launch.environment(os.environ, visible),
                start_new_session=True,
            )
        self._started.set()
        return visible

    def wait(self) -> int:
        self._started.wait()
        assert self._proc is not None
        return self._proc.wait()

    def signal(self, sig: int) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)


class RayExecution:
    """A running attempt on Ray."""

    def __init__(self, actor: Any, group: Any, lost: Callable[[], None]) -> None:
        self.pid: int | None = None  # on a Ray node, not here
        self._actor = actor
        self._group = group
        self._lost = lost
        self._done: asyncio.Future[int] = asyncio.ensure_future(self._wait())

    async def _wait(self) -> int:
        try:
            return int(await self._actor.wait.remote())
        except Exception as exc:  # its actor, node or whole cluster is gone: Ray raises many kinds
            self._lost()
            raise ExecutionLost(f"Ray lost the attempt ({type(exc).__name__})") from None
        finally:
            # In a thread: on a cluster that is gone these block (Ray's client retries), and the
            # event loop must keep answering.
            await asyncio.to_thread(self._release)

    def _release(self) -> None:
        with contextlib.suppress(Exception):  # nothing left to clean on a cluster that is gone
            ray.kill(self._actor)
            remove_placement_group(self._group)

    async def wait(self) -> int:
        """The exit code (negative: the signal that ended it)."""
        return await asyncio.shield(self._done)

    async def stop(self, grace_s: float) -> None:
        """SIGTERM to the job's process group, SIGKILL after ``grace_s`` (or once Ray lost it)."""
        with contextlib.suppress(Exception):  # a lost attempt cannot be signalled: it ends lost
            await self._actor.signal.remote(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._done), grace_s)
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self._actor.signal.remote(signal.SIGKILL)
        with contextlib.suppress(ExecutionLost):
            await asyncio.shield(self._done)


class RayExecutor:
    """Starts attempts on a Ray cluster."""

    def __init__(self, address: str | None, num_gpus: int) -> None:
        self._address = address
        self._num_gpus = num_gpus
        self._lock = asyncio.Lock()
        self._stale = False  # an attempt was lost: connect anew before the next start

    def _lose(self) -> None:
        self._stale = True

    async def _connect(self) -> None:
        async with self._lock:
            if self._stale:
                self._stale = False
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(ray.shutdown)
            if ray.is_initialized():
                return
            if self._address is not None:
                await _reachable(self._address)
            if self._address is None:
                # "local": a Ray of its own, never one found on the machine by accident.
                await asyncio.to_thread(
                    ray.init,
                    address="local",
                    num_gpus=self._num_gpus,
                    include_dashboard=False,
                    log_to_driver=False,
                )
            else:
                await asyncio.to_thread(ray.init, address=self._address, log_to_driver=False)

    def reap(self, job_id: str, pid: int) -> bool:
        """Nothing to do: Ray ends a driver's actors when the driver goes."""
        return False

    async def start(self, launch: Launch) -> RayExecution:
        """Reserve the job's GPUs in a placement group, then start its command there."""
        try:
            await self._connect()
        except ExecutorUnavailable:
            raise
        except Exception as exc:  # Ray raises several kinds when a cluster is unreachable
            raise ExecutorUnavailable(
                f"Ray at {self._address or 'local'} is unavailable: {exc}"
            ) from None
        gpus = len(launch.units)
        group = placement_group([{"GPU": gpus, "CPU": 0.001}], strategy="STRICT_PACK")
        try:
            await asyncio.wait_for(group.ready(), _PLACEMENT_TIMEOUT_S)
        except TimeoutError:
            remove_placement_group(group)
            raise ExecutorUnavailable(f"Ray could not place {gpus} GPUs on one node") from None
        actor = _JobActor.options(  # type: ignore[attr-defined]
            num_gpus=gpus,
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, 0),
        ).remote()
        await actor.start.remote(launch)
        return RayExecution(actor, group, self._lose)


async def _reachable(address: str) -> None:
    """Fail fast when nothing listens at a ``ray://HOST:PORT`` (Ray's client retries for ~30 s)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    except (OSError, TimeoutError, ValueError):
        raise ExecutorUnavailable(f"nothing answers at {address}") from None
    writer.close()
