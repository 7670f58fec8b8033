"""The summary an evaluation writes beside MONAI's per-case CSVs: mean, standard deviation and count per metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine
from monai.utils import convert_to_numpy

from medseg.files import write_json

__all__ = ["evaluation_summary", "print_outputs", "write_summary"]


def _per_case(details: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-case values of a metric's details ``(cases, channels)``: ``(cases, channels)`` as float64."""
    values = convert_to_numpy(details, dtype=np.float64)
    return values.reshape(len(values), -1)


def _statistics(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    return {
        "mean": float(finite.mean()) if finite.size else math.nan,
        "std": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
        "n": int(finite.size),
        "n_not_finite": int(values.size - finite.size),
    }


def evaluation_summary(engine: Engine, labels: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "std", "n"}}`` over the cases the engine evaluated (NaN and infinite values left out;
    a case's value is its mean over the channels). With several ``labels`` (one channel of details each), also
    ``<metric>_<label>`` per label: Dice, IoU and HD95 per label beside their mean over the labels."""
    summary = {}
    details = getattr(engine.state, "metric_details", {}) or {}
    for name, value in engine.state.metrics.items():
        if name not in details:
            summary[name] = {"mean": float(value), "std": math.nan, "n": 0, "n_not_finite": 0}
            continue
        cases = _per_case(details[name])
        summary[name] = _statistics(cases.mean(axis=1))
        if len(labels) > 1 and cases.shape[1] == len(labels):
            summary.update({f"{name}_{label}": _statistics(cases[:, k]) for k, label in enumerate(labels)})
    return summary


def write_summary(engine: Engine, path: str | Path, labels: Sequence[str] = ()) -> Path:
    """Write :func:`evaluation_summary` as JSON, atomically, and print it; return the path."""
    summary = evaluation_summary(engine, labels)
    path = write_json(path, summary)
    for name, row in summary.items():
        print(f"{name:>20s}  {row['mean']:.4f} ± {row['std']:.4f}  (n = {row['n']})")
    print(f"wrote {path}")
    return path


def print_outputs(output_dir: str | Path, eval_dir: str | Path | None = None) -> list[Path]:
    """Print where a bundle run put its outputs (those that exist); return them.

    ``eval_dir`` is the bundle's ``eval_dir`` (default ``<output_dir>/eval``), where evaluation writes its summary.
    """
    root = Path(output_dir)
    evaluation = root / "eval" if eval_dir is None else Path(eval_dir)
    outputs = {
        "model": root / "models" / "model.pt",
        "last state (--resume)": root / "models" / "last_state.pt",
        "training curves": root / "training_curves.png",
        "validation overlays": root / "validation_overlays.png",
        "history": root / "history.json",
        "evaluation summary": evaluation / "summary.json",
        "per-case metrics": evaluation / "metrics.csv",
        "TensorBoard logs": root / "logs",
    }
    found = [(what, path) for what, path in outputs.items() if path.exists()]
    for what, path in found:
        print(f"{what:>22s}: {path}")
    return [path for _, path in found]
