"""Running a comparison: every (network, loss, fold) trained and evaluated through the bundle, resumable.

Every run trains and evaluates with the bundle's own configs, exactly as ``python -m monai.bundle run`` does
(:mod:`medseg.apps.bundle_runs`), in its own folder ``<out>/runs/<network>/<loss>/fold<k>/`` holding the bundle's
outputs, ``train.log``/``evaluate.log`` (the commands and their output) and, when it finished, ``record.json``. A
run with a ``record.json`` is skipped when the command runs again (an interrupted comparison resumes; a run killed
half-way continues from its last state); a failed run is recorded in ``failed.json`` with its error, the others go
on, and it is tried again next time.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medseg.files import atomic_path

from ..bundle_runs import allow_runs, run_bundle, stop_running
from .plots import write_plots
from .report import write_csv, write_report
from .spec import METRICS, Comparison, Run

__all__ = ["run_comparison", "write_results"]


def _finished(run: Run, out: Path) -> dict | None:
    path = run.folder(out) / "record.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _write_json(path: Path, payload: Any) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=1) + "\n")


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][-400:]


def _execute(comparison: Comparison, run: Run, env: dict[str, str]) -> dict[str, Any]:
    """Train and evaluate ``run`` through the bundle; its record (finished) or the failure."""
    folder = run.folder(comparison.out)
    settings = comparison.settings(run)
    start = time.perf_counter()
    for workflow in ("train", "evaluate"):
        log = f"{workflow}.log"
        process = run_bundle(comparison.bundle, workflow, settings, log=folder / log, env=env)
        if process.returncode:
            failure = {**asdict(run), "status": "failed", "error": f"{log}: {_last_line(folder / log)}"}
            _write_json(folder / "failed.json", failure)
            return failure
    summary = json.loads((folder / "eval" / "summary.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    validated = [row for row in history if "val_mean_dice" in row]
    best = max(validated, key=lambda row: row["val_mean_dice"]) if validated else {"epoch": math.nan}
    record = {
        **asdict(run),
        "status": "ok",
        "metrics": {name: summary[name]["mean"] for name in METRICS if name in summary},
        "per_case": {name: summary[name] for name in METRICS if name in summary},
        "best_epoch": best["epoch"],
        "epochs_trained": len(history),
        "seconds": time.perf_counter() - start,
    }
    record["metrics"]["best_epoch"] = best["epoch"]
    (folder / "failed.json").unlink(missing_ok=True)
    _write_json(folder / "record.json", record)
    return record


def _environments(comparison: Comparison) -> list[dict[str, str]]:
    """One environment per job: its GPU, or its share of the CPU cores."""
    if comparison.device == "cuda":
        import torch

        gpus = max(torch.cuda.device_count(), 1)
        return [{"CUDA_VISIBLE_DEVICES": str(job % gpus)} for job in range(comparison.jobs)]
    threads = str(max(1, (os.cpu_count() or 1) // comparison.jobs))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} for _ in range(comparison.jobs)]


def run_comparison(comparison: Comparison, print_fn: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every (network, loss, fold) not finished yet, then write ``results.csv``, ``report.md`` and the plots."""
    allow_runs()
    runs = comparison.runs()
    records: dict[Run, dict] = {run: record for run in runs if (record := _finished(run, comparison.out))}
    todo = [run for run in runs if run not in records]
    print_fn(f"{len(runs)} runs: {len(records)} finished earlier, {len(todo)} to run, {comparison.jobs} at a time")
    environments = _environments(comparison)
    durations: list[float] = []
    pool = ThreadPoolExecutor(max_workers=comparison.jobs)
    try:
        futures = {
            pool.submit(_execute, comparison, run, environments[i % comparison.jobs]): run for i, run in enumerate(todo)
        }
        for done, future in enumerate(as_completed(futures), 1):
            record = records[futures[future]] = future.result()
            print_fn(f"[{done}/{len(todo)}] {futures[future].label}: {_outcome(record, durations)}; about "
                     f"{_minutes_left(durations, len(todo) - done, comparison.jobs)} min left")  # fmt: skip
    except BaseException:  # Ctrl-C, SIGTERM: no new run starts, those in progress stop (they resume next time)
        pool.shutdown(wait=False, cancel_futures=True)
        stop_running()
        raise
    pool.shutdown()
    ordered = [records[run] for run in runs]
    write_results(comparison, ordered)
    return ordered


def _outcome(record: dict, durations: list[float]) -> str:
    if record["status"] != "ok":
        return f"FAILED: {record['error']}"
    durations.append(record["seconds"])
    return f"ok, test Dice {record['metrics'].get('test_mean_dice', math.nan):.4f}"


def _minutes_left(durations: list[float], runs_left: int, jobs: int) -> str:
    return f"{statistics.mean(durations) * runs_left / jobs / 60:.0f}" if durations else "?"


def write_results(comparison: Comparison, records: Sequence[dict], plots: bool = True) -> None:
    """``results.csv``, ``report.md`` and (``plots``) the figures of the finished runs."""
    write_csv(comparison, records)
    write_report(comparison, records)
    if plots:
        write_plots(comparison, records)
