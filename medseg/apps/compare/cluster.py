"""The Ray backend of the comparison: each run a Ray task on a cluster, its files collected on the driver.

``medseg compare-losses --backend ray [--address HOST:PORT|auto]`` joins a running cluster (``ray start --head``
on one machine, ``ray start --address`` on the others, or a SLURM allocation that starts them; see
docs/comparisons.md), once something answers at the address (:func:`check_address`), or without ``--address``
starts a Ray instance of its own on this machine, on 127.0.0.1 only, for the command's lifetime (never a cluster
that already runs there). Each run is a task with ``--cpus-per-run`` CPUs and ``--gpus-per-run`` GPUs (``0.25``
packs four runs on one GPU; Ray sets the task's ``CUDA_VISIBLE_DEVICES``), retried once on another worker if its
worker or node dies (``max_retries=1``; an error of the run itself is not retried but recorded, as the local
backend does).

A task trains and evaluates in a scratch folder of its node with :func:`~medseg.apps.compare.execution.
execute_run`, the same code as the local backend, and returns the folder as a tar archive; the driver unpacks it
as the run's folder under ``--out``, in one rename, so that the comparison's files are the same whichever backend
ran them and re-running the command skips the runs whose record arrived. A run whose task was lost half-way
starts again from the beginning (its scratch folder went with its node). Every node needs medseg installed, and
the bundle, the datalist and the images at the same paths (a shared file system, as clusters have).

Ray is an optional dependency (``pip install medseg[ray]``), imported only by this backend.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import sys
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .execution import execute_run, failure_record
from .local import thread_environment
from .spec import Comparison, Run
from .temporaries import scratch_folder, unpacking_folder

__all__ = ["ClusterAddressError", "RayBackend", "check_address", "pack_folder", "unpack_folder"]


def pack_folder(folder: Path) -> bytes:
    """``folder``'s files as an uncompressed tar archive (checkpoints do not compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(folder, arcname=".")
    return buffer.getvalue()


def unpack_folder(archive: bytes, folder: Path) -> None:
    """Unpack :func:`pack_folder`'s ``archive`` as ``folder``, replacing what was there in one rename."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    unpacked = unpacking_folder(folder)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(unpacked, filter="data")
        unpacked.chmod(folder.parent.stat().st_mode & 0o777)  # as the local backend's folders, not mkdtemp's 0700
        if folder.exists():
            shutil.rmtree(folder)
        unpacked.rename(folder)
    except BaseException:
        shutil.rmtree(unpacked, ignore_errors=True)
        raise


def _loopback_only() -> None:
    """Make the Ray instance this process starts use 127.0.0.1: ``ray.init`` turns a loopback ``_node_ip_address``
    into the machine's address (for other nodes to reach), unless Ray's "no cluster" switch is set when it is
    imported (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read into a constant then, and inherited by its workers). Ray
    imported earlier by the caller keeps its own setting."""
    if "ray" not in sys.modules:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


class ClusterAddressError(ValueError):
    """An ``--address`` where no Ray cluster answers; the message names it and the reason."""


def check_address(address: str, timeout: float = 10.0) -> None:
    """Raise :class:`ClusterAddressError` when nothing accepts a connection at ``address`` (``HOST:PORT``) within
    ``timeout`` seconds: Ray itself retries an address where nothing listens for minutes, saying only that it
    retries. ``auto`` (the cluster this node belongs to) is Ray's to find: it says at once when there is none."""
    if address == "auto":
        return
    host, separator, port = address.split("://", 1)[-1].rpartition(":")  # ray://HOST:PORT: a Ray client server
    if not separator or not port.isdigit() or not host:
        raise ClusterAddressError(f"{address}: not HOST:PORT (e.g. 10.0.0.1:6379) or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise ClusterAddressError(
            f"{address}: no Ray cluster answers there ({reason}); start one (ray start --head --port={port}) or "
            "give the head node's address"
        ) from None


def _cpus(comparison: Comparison) -> float:
    return comparison.cpus_per_run or 1.0


def _run_task(comparison: Comparison, run: Run) -> tuple[dict[str, Any], bytes]:
    """A Ray task: ``run`` in a scratch folder of this node; its record and the folder's archive."""
    scratch = scratch_folder()  # and the scratch folders of this node's killed tasks removed
    try:
        environment = thread_environment(_cpus(comparison))
        record = execute_run(comparison, run, scratch, environment, die_with_parent=True)
        return record, pack_folder(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class RayBackend:
    """Runs every run as a Ray task (see the module docstring)."""

    def __init__(self, comparison: Comparison) -> None:
        if not comparison.address:
            _loopback_only()
        import ray

        self.comparison = comparison
        self._started = not ray.is_initialized()
        if self._started:
            self._connect(comparison.address)
        cpus = ray.cluster_resources().get("CPU", 1.0)
        self.slots = max(1, int(cpus // _cpus(comparison)))

    @staticmethod
    def _connect(address: str | None) -> None:
        """Join the cluster at ``address`` (checked first: something must answer there), or without one start a
        Ray instance of this command's own: ``address="local"``, so that neither ``RAY_ADDRESS`` nor a cluster
        already running on this machine (another user's, a test's) is joined; on 127.0.0.1, with this machine's
        CPUs, no dashboard; :meth:`execute` shuts it down at the end."""
        import ray

        options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if address:
            check_address(address)
            ray.init(address=address, **options)
        else:
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                     num_cpus=os.cpu_count() or 1, **options)  # fmt: skip

    def describe(self) -> str:
        import ray

        resources = ray.cluster_resources()
        return (
            f"Ray tasks of {_cpus(self.comparison):g} CPU and {self.comparison.gpus_per_run:g} GPU on a cluster "
            f"of {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs"
        )

    def execute(self, runs: Sequence[Run]) -> Iterator[tuple[Run, dict[str, Any]]]:
        """Submit every run; yield each with its record as its files arrive. On an interruption the tasks still
        running are cancelled (their bundle processes stop with their workers)."""
        import ray

        task = ray.remote(_run_task).options(
            num_cpus=_cpus(self.comparison),
            num_gpus=self.comparison.gpus_per_run,
            max_retries=1,
            retry_exceptions=False,
        )
        pending = {task.remote(self.comparison, run): run for run in runs}
        try:
            while pending:
                [ready], _ = ray.wait(list(pending), num_returns=1)
                run = pending.pop(ready)
                yield run, self._collect(ready, run)
        except BaseException:
            for reference in pending:
                ray.cancel(reference, force=True)
            raise
        finally:
            if self._started:
                ray.shutdown()

    def _collect(self, reference: Any, run: Run) -> dict[str, Any]:
        import ray

        folder = run.folder(self.comparison.out)
        try:
            record, archive = ray.get(reference)
        except ray.exceptions.RayError as error:  # lost twice, or the task could not run
            folder.mkdir(parents=True, exist_ok=True)
            return failure_record(run, folder, f"ray: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
        unpack_folder(archive, folder)
        return record
