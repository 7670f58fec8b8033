"""Running a comparison: every (network, loss, fold, seed) trained and evaluated through the bundle, resumable.

Every run trains and evaluates with the bundle's own configs, exactly as ``python -m monai.bundle run`` does
(:mod:`medseg.apps.bundle_runs`), into its folder ``<out>/runs/<network>/<loss>/fold<k>/seed<s>/``
(:mod:`~medseg.apps.compare.execution`), on this machine (:mod:`~medseg.apps.compare.local`) or as Ray tasks
(:mod:`~medseg.apps.compare.cluster`). A run with a ``record.json`` is skipped when the command runs again (an
interrupted comparison resumes); a failed run is recorded in ``failed.json`` with its error, the others go on, and
it is tried again next time. Before anything runs, every run folder already there must have been run with this
comparison's settings, bundle configs and datalist (:func:`~medseg.apps.compare.execution.check_resumable`): a
comparison is never resumed or reported with runs of another budget, size or data. What killed runs left behind
(temporary folders and files) is removed when the comparison starts again
(:mod:`~medseg.apps.compare.temporaries`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any

from medseg.files import output_lock

from ..bundle_runs import allow_runs
from .execution import check_resumable, finished_record
from .local import LocalBackend
from .plots import write_plots
from .report import write_csv, write_report, write_statistics
from .spec import Comparison, Run
from .statistics import compare_with_baseline
from .temporaries import clear_temporaries

__all__ = ["run_comparison", "write_results"]


def _backend(comparison: Comparison) -> Any:
    if comparison.backend == "ray":
        from .cluster import RayBackend

        return RayBackend(comparison)
    return LocalBackend(comparison)


def run_comparison(comparison: Comparison, print_fn: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every run not finished yet, then write ``results.csv``, ``statistics.csv``, ``report.md`` and the
    plots; return the records in the grid's order.

    The comparison holds ``comparison.out`` locked while it runs (a second one on the same folder is refused), and
    first removes what runs killed earlier left there (:func:`~medseg.apps.compare.temporaries.clear_temporaries`).

    Raises:
        RunMismatchError: before any run, when a run folder under ``comparison.out`` was run otherwise.
        medseg.files.OutputLockedError: when another comparison runs in ``comparison.out``.
    """
    allow_runs()
    with output_lock(comparison.out):
        return _run_locked(comparison, print_fn)


def _run_locked(comparison: Comparison, print_fn: Callable[[str], None]) -> list[dict[str, Any]]:
    runs = comparison.runs()
    check_resumable(comparison, runs)
    clear_temporaries(comparison, runs)
    records: dict[Run, dict] = {run: record for run in runs if (record := finished_record(run.folder(comparison.out)))}
    todo = [run for run in runs if run not in records]
    backend = _backend(comparison) if todo else None
    plan = backend.describe() if backend else "nothing to run"
    print_fn(f"{len(runs)} runs: {len(records)} finished earlier, {len(todo)} to run, {plan}")
    durations: list[float] = []
    if backend:
        with closing(backend.execute(todo)) as finished:
            for done, (run, record) in enumerate(finished, 1):
                records[run] = record
                print_fn(f"[{done}/{len(todo)}] {run.label}: {_outcome(record, durations)}; about "
                         f"{_minutes_left(durations, len(todo) - done, backend.slots)} min left")  # fmt: skip
    ordered = [records[run] for run in runs]
    write_results(comparison, ordered)
    return ordered


def _outcome(record: dict, durations: list[float]) -> str:
    if record["status"] != "ok":
        return f"FAILED: {record['error']}"
    durations.append(record["seconds"])
    return f"ok, test Dice {record['metrics'].get('test_mean_dice', math.nan):.4f}"


def _minutes_left(durations: list[float], runs_left: int, slots: int) -> str:
    return f"{statistics.mean(durations) * runs_left / slots / 60:.0f}" if durations else "?"


def write_results(comparison: Comparison, records: Sequence[dict], plots: bool = True) -> None:
    """``results.csv``, ``statistics.csv``, ``report.md`` and (``plots``) the figures of the finished runs."""
    tests = compare_with_baseline(records, comparison.losses, comparison.baseline, metrics=comparison.tested_metrics)
    write_csv(comparison, records)
    write_statistics(comparison, tests)
    write_report(comparison, records, tests)
    if plots:
        write_plots(comparison, records)
