"""The local backend of the comparison: ``jobs`` runs at a time as processes on this machine (the default).

Each job is pinned to one device: on CUDA job ``i`` sees GPU ``i`` modulo the GPUs, on the CPU the cores are
shared out (``OMP_NUM_THREADS``), or each run gets ``cpus_per_run`` threads. A run writes straight into its
folder of the comparison, so that a run stopped half-way continues from its last state next time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from ..bundle_runs import stop_running
from .execution import execute_run
from .spec import Comparison, Run

__all__ = ["LocalBackend", "thread_environment"]


def thread_environment(cpus: float) -> dict[str, str]:
    """The environment that gives a bundle process ``cpus`` CPU threads (at least one)."""
    threads = str(max(1, int(cpus)))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


class LocalBackend:
    """Runs ``comparison.jobs`` runs at a time in threads, each a bundle process (see the module docstring)."""

    def __init__(self, comparison: Comparison) -> None:
        self.comparison = comparison
        self.slots = comparison.jobs

    def describe(self) -> str:
        return f"{self.slots} at a time"

    def _environments(self) -> list[dict[str, str]]:
        jobs = self.comparison.jobs
        if self.comparison.device == "cuda":
            import torch

            gpus = max(torch.cuda.device_count(), 1)
            return [{"CUDA_VISIBLE_DEVICES": str(job % gpus)} for job in range(jobs)]
        threads = self.comparison.cpus_per_run or (os.cpu_count() or 1) // jobs
        return [thread_environment(threads) for _ in range(jobs)]

    def execute(self, runs: Sequence[Run]) -> Iterator[tuple[Run, dict[str, Any]]]:
        """Yield each run with its record as it finishes; on an interruption (Ctrl-C, SIGTERM) no new run starts
        and those in progress are stopped (they resume next time)."""
        environments = self._environments()
        out = self.comparison.out
        pool = ThreadPoolExecutor(max_workers=self.slots)
        try:
            futures = {
                pool.submit(execute_run, self.comparison, run, run.folder(out), environments[i % self.slots]): run
                for i, run in enumerate(runs)
            }
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            stop_running()
            raise
        pool.shutdown()
