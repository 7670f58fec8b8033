"""One run of a comparison: train and evaluate through the bundle into a folder, and the record of what it gave.

The run's folder holds ``run.json`` (what it is run with: its settings, the digests of the bundle's configs and of
the datalist; written first), the bundle's outputs, ``train.log``/``evaluate.log`` (the commands, as a user types
them, and their output) and, when it finished, ``record.json``; a failed run leaves ``failed.json`` with its error.
A comparison resumes or reuses a run folder only when its ``run.json`` is what it would write
(:func:`check_resumable`).
Both backends (:mod:`~medseg.apps.compare.local`, :mod:`~medseg.apps.compare.cluster`) run runs with
:func:`execute_run`, so that a run's files are the same wherever it ran.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medseg.files import write_json
from medseg.pipeline import SETTINGS_FILE

from ..bundle_runs import run_bundle
from .spec import METRICS, Comparison, Run, metric_base

__all__ = [
    "IDENTITY_FILE",
    "RunMismatchError",
    "check_resumable",
    "execute_run",
    "failure_record",
    "finished_record",
    "identity_differences",
    "per_case_metrics",
]


#: A run folder's record of what it was run with (:meth:`Comparison.identity`), written before it starts.
IDENTITY_FILE = "run.json"


class RunMismatchError(ValueError):
    """A run folder of the comparison's that another experiment made; the message names the folder and what differs."""


def identity_differences(recorded: Mapping[str, Any], asked: Mapping[str, Any]) -> str:
    """In words, how a run folder's recorded identity (:meth:`Comparison.identity`) differs from the one asked."""
    said = [f"other {name.replace('_', ' ')} content" for name in ("bundle_configs", "datalist")
            if recorded.get(name) != asked.get(name)]  # fmt: skip
    before, now = recorded.get("settings", {}), asked.get("settings", {})
    said += [f"{name} {json.dumps(before.get(name))} (now {json.dumps(now.get(name))})"
             for name in sorted(set(before) | set(now)) if before.get(name) != now.get(name)]  # fmt: skip
    return ", ".join(said)


def check_resumable(comparison: Comparison, runs: Sequence[Run]) -> None:
    """Raise :class:`RunMismatchError` when a run folder under ``comparison.out`` holds a run (finished, failed or
    begun) of other settings, bundle configs or datalist than this comparison asks, or of unknown ones: resuming
    it, or reusing its results, would mix two experiments under one report."""
    for run in runs:
        folder = run.folder(comparison.out)
        if not folder.is_dir() or not any(folder.iterdir()):
            continue
        try:
            recorded = json.loads((folder / IDENTITY_FILE).read_text())
        except (OSError, ValueError):
            raise RunMismatchError(
                f"{folder}: a run without a readable record of its settings ({IDENTITY_FILE}); give another --out"
            ) from None
        if differences := identity_differences(recorded, comparison.identity(run)):
            raise RunMismatchError(
                f"{folder}: run with {differences}; resume with the settings it was run with, or give another --out"
            )


def finished_record(folder: Path) -> dict | None:
    """The record of the run in ``folder`` if it finished, else ``None``."""
    path = folder / "record.json"
    return json.loads(path.read_text()) if path.is_file() else None


def failure_record(run: Run, folder: Path, error: str) -> dict[str, Any]:
    """Record ``run`` as failed with ``error`` in ``folder/failed.json``; return that record."""
    failure = {**asdict(run), "status": "failed", "error": error}
    write_json(folder / "failed.json", failure)
    return failure


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][-400:]


def per_case_metrics(evaluation: Path, labels: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """``{case: {metric: value}}`` from the per-case CSVs MONAI's ``MetricsSaver`` writes in ``evaluation``
    (``<metric>_raw.csv``: a row per case, named by its image file, its mean over the channels, and a column per
    channel: with several ``labels``, each label's value as ``<metric>_<label>``)."""
    cases: dict[str, dict[str, float]] = {}
    for name in METRICS:
        path = evaluation / f"{name}_raw.csv"
        if path.is_file():
            with open(path, newline="") as stream:
                for row in csv.DictReader(stream):
                    values = cases.setdefault(row["filename"], {})
                    values[name] = float(row["mean"])
                    for index, label in enumerate(labels if len(labels) > 1 else ()):
                        if f"class{index}" in row:
                            values[f"{name}_{label}"] = float(row[f"class{index}"])
    return cases


def execute_run(
    comparison: Comparison, run: Run, folder: Path, env: Mapping[str, str], die_with_parent: bool = False
) -> dict[str, Any]:
    """Train and evaluate ``run`` through the bundle with its outputs in ``folder``; its record (finished) or
    the failure. ``die_with_parent``: the bundle processes are stopped if this process dies (a Ray worker)."""
    settings = comparison.settings(run, folder)
    write_json(folder / IDENTITY_FILE, comparison.identity(run))
    start = time.perf_counter()
    for workflow in ("train", "evaluate"):
        log = folder / f"{workflow}.log"
        process = run_bundle(comparison.bundle, workflow, settings, log=log, env=env, die_with_parent=die_with_parent)
        if process.returncode:
            return failure_record(run, folder, f"{log.name}: {_last_line(log)}")
    summary = json.loads((folder / "eval" / "summary.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    validated = [row for row in history if "val_mean_dice" in row]
    best = max(validated, key=lambda row: row["val_mean_dice"]) if validated else {"epoch": math.nan}
    metrics = {name: value["mean"] for name, value in summary.items() if metric_base(name) in METRICS}
    labels = json.loads((folder / "models" / SETTINGS_FILE).read_text()).get("labels", [])
    record = {
        **asdict(run),
        "status": "ok",
        "metrics": {**metrics, "best_epoch": best["epoch"]},
        "cases": per_case_metrics(folder / "eval", labels),
        "epochs_trained": len(history),
        "seconds": time.perf_counter() - start,
    }
    (folder / "failed.json").unlink(missing_ok=True)
    write_json(folder / "record.json", record)
    return record
