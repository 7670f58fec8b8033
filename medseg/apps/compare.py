"""``medseg compare-losses``: k-fold × losses × networks through a bundle, with the papers' tables and tests.

Every (network, loss, fold) run trains and evaluates with the bundle's own configs, exactly as
``python -m monai.bundle run`` does (:mod:`medseg.apps.bundle_runs`), in its own folder
``<out>/runs/<network>/<loss>/fold<k>/`` holding the bundle's outputs, ``train.log``/``evaluate.log`` (the
commands and their output) and, when it finished, ``record.json``. A run with a ``record.json`` is skipped when
the command runs again (an interrupted comparison resumes; a run killed half-way continues from its last state);
a failed run is recorded in ``failed.json`` with its error, the others go on, and it is tried again next time.

Per run: test Dice, IoU, pixel accuracy, Cohen's kappa and 95 % Hausdorff distance (the bundle's evaluation), and
the epoch of convergence (the best validation epoch, where early stopping counts from). Outputs:
``results.csv`` (one row per run and metric), ``report.md`` (per network and metric: losses as rows, folds F1..Fk
and mean ± std as columns, the best of each column in bold, as the papers print them; paired t-tests of every loss
against the baseline over the folds with ``scipy.stats.ttest_rel``), and PNG plots: box plots per loss, learning
curves, and a grid of the same test cases segmented by each loss.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from medseg.files import atomic_path

from .bundle_runs import allow_runs, run_bundle, stop_running

__all__ = ["METRICS", "Comparison", "Run", "paired_tests", "run_comparison", "write_report", "write_results"]

#: Reported metrics: name in the evaluation summary -> (column title, higher is better).
METRICS: dict[str, tuple[str, bool]] = {
    "test_mean_dice": ("Dice", True),
    "test_mean_iou": ("IoU", True),
    "test_accuracy": ("pixel accuracy", True),
    "test_kappa": ("Cohen's kappa", True),
    "test_hd95": ("95 % Hausdorff distance (pixels)", False),
    "best_epoch": ("epoch of convergence", False),
}


@dataclass(frozen=True)
class Run:
    """One training and evaluation of the comparison."""

    network: str
    loss: str
    fold: int

    def folder(self, out: Path) -> Path:
        return out / "runs" / self.network / self.loss / f"fold{self.fold}"

    @property
    def label(self) -> str:
        return f"{self.network} {self.loss} fold {self.fold}"


@dataclass
class Comparison:
    """What to compare and how.

    Args:
        bundle: the bundle folder whose configs train and evaluate every run.
        datalist: a ``medseg prepare`` datalist with its folds.
        losses, networks: registry names (``networks`` empty: the bundle's default network).
        folds: the folds to run (0 .. folds - 1).
        out: the comparison's folder.
        baseline: the loss the others are tested against.
        epochs, minutes: the training budget of each run (``minutes``: wall clock, stops cleanly).
        device: ``cpu`` or ``cuda``; with ``jobs`` > 1 on CUDA, job ``i`` runs on GPU ``i`` modulo the GPUs.
        jobs: runs at a time, each pinned to one device (CPU: the cores shared out).
        overrides: more bundle settings for every run (e.g. ``{"image_size": 128}``).
    """

    bundle: Path
    datalist: Path
    losses: list[str]
    out: Path
    networks: list[str] = field(default_factory=list)
    folds: int = 4
    baseline: str = "bce"
    epochs: int | None = None
    minutes: float | None = None
    device: str = "cpu"
    jobs: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> list[Run]:
        networks = self.networks or [None]
        return [
            Run(net or "default", loss, fold) for net in networks for loss in self.losses for fold in range(self.folds)
        ]

    def settings(self, run: Run) -> dict[str, Any]:
        """The bundle overrides of ``run``: the same settings for every run but its loss, network and fold."""
        settings = {
            "datalist": self.datalist.resolve(),
            "fold": run.fold,
            "loss_name": run.loss,
            "output_dir": run.folder(self.out).resolve(),
            "official_splits": False,
            "resume": True,
            "device": self.device,
            "epochs": self.epochs,
            "minutes": self.minutes,
            **self.overrides,
        }
        if run.network != "default":
            settings["network_name"] = run.network
        return settings


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
    for configs, log in ((["train.json"], "train.log"), (["train.json", "evaluate.json"], "evaluate.log")):
        process = run_bundle(comparison.bundle, configs, settings, log=folder / log, env=env)
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
    out = comparison.out
    with atomic_path(out / "results.csv") as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["network", "loss", "fold", "status", "metric", "value", "error"])
        for record in records:
            if record["status"] != "ok":
                writer.writerow([record["network"], record["loss"], record["fold"], "failed", "", "", record["error"]])
                continue
            for metric, value in record["metrics"].items():
                writer.writerow([record["network"], record["loss"], record["fold"], "ok", metric, value, ""])
    write_report(comparison, records)
    if plots:
        from .compare_plots import write_plots

        write_plots(comparison, records)


def _table(values: dict[str, dict[int, float]], folds: int, higher: bool) -> list[str]:
    """Markdown rows: a loss per row, F1..Fk and mean ± std columns, the best of each column in bold."""
    columns: list[dict[str, float]] = [
        {loss: per.get(k, math.nan) for loss, per in values.items()} for k in range(folds)
    ]
    means = {loss: np.nanmean(list(per.values())) if per else math.nan for loss, per in values.items()}
    stds = {loss: np.nanstd(list(per.values()), ddof=1) if len(per) > 1 else math.nan for loss, per in values.items()}
    columns.append(means)

    def best(column: dict[str, float]) -> float | None:
        finite = [v for v in column.values() if np.isfinite(v)]
        return (max(finite) if higher else min(finite)) if finite else None

    winners = [best(column) for column in columns]
    rows = ["| loss | " + " | ".join(f"F{k + 1}" for k in range(folds)) + " | mean ± std |", "|---" * (folds + 2) + "|"]
    for loss in values:
        cells = []
        for column, winner in zip(columns, winners):
            value = column[loss]
            text = "—" if not np.isfinite(value) else f"{value:.4f}"
            if column is means and np.isfinite(value):
                text = f"{value:.4f} ± {stds[loss]:.4f}"
            cells.append(f"**{text}**" if winner is not None and value == winner else text)
        rows.append(f"| {loss} | " + " | ".join(cells) + " |")
    return rows


def paired_tests(values: dict[str, dict[int, float]], baseline: str) -> dict[str, tuple[float, float, int]]:
    """``{loss: (t, p, folds)}``: ``scipy.stats.ttest_rel`` of each loss against ``baseline`` over common folds."""
    tests = {}
    for loss, per in values.items():
        if loss == baseline or baseline not in values:
            continue
        folds = sorted(set(per) & set(values[baseline]))
        if len(folds) < 2:
            tests[loss] = (math.nan, math.nan, len(folds))
            continue
        result = stats.ttest_rel([per[k] for k in folds], [values[baseline][k] for k in folds])
        tests[loss] = (float(result.statistic), float(result.pvalue), len(folds))
    return tests


def collect(records: Sequence[dict]) -> dict[str, dict[str, dict[str, dict[int, float]]]]:
    """``{network: {metric: {loss: {fold: value}}}}`` of the finished runs."""
    table: dict[str, dict[str, dict[str, dict[int, float]]]] = defaultdict(lambda: defaultdict(dict))
    for record in records:
        if record["status"] == "ok":
            for metric, value in record["metrics"].items():
                table[record["network"]][metric].setdefault(record["loss"], {})[record["fold"]] = float(value)
    return table


def write_report(comparison: Comparison, records: Sequence[dict]) -> Path:
    """``report.md``: the tables and the paired t-tests (see the module docstring)."""
    lines = [
        "# Loss comparison",
        "",
        f"Bundle `{comparison.bundle.name}`, datalist `{comparison.datalist}`, {comparison.folds} folds; "
        f"budget per run: "
        + (f"{comparison.minutes} min" if comparison.minutes else f"{comparison.epochs} epochs")
        + (f", overrides {comparison.overrides}" if comparison.overrides else "")
        + ".",
        "",
    ]
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        lines += [
            "Failed runs:",
            "",
            *[f"- {r['network']} {r['loss']} fold {r['fold']}: {r['error']}" for r in failed],
            "",
        ]
    for network, metrics in collect(records).items():
        lines += [f"## {network}", ""]
        for metric, (title, higher) in METRICS.items():
            if metric not in metrics:
                continue
            values = {loss: metrics[metric][loss] for loss in comparison.losses if loss in metrics[metric]}
            lines += [f"### {title}", "", *_table(values, comparison.folds, higher), ""]
            tests = paired_tests(values, comparison.baseline)
            if tests:
                lines += [
                    f"Paired t-test against `{comparison.baseline}` over the folds (`scipy.stats.ttest_rel`):",
                    "",
                ]
                lines += ["| loss | t | p | folds |", "|---|---:|---:|---:|"]
                lines += [f"| {loss} | {t:.3f} | {p:.4g} | {n} |" for loss, (t, p, n) in tests.items()]
                lines.append("")
    path = comparison.out / "report.md"
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n")
    return path
