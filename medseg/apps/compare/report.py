"""The comparison's tables: ``results.csv`` (a row per run and metric) and ``report.md`` (per network and metric,
losses as rows, folds and mean ± std as columns, the best of each column in bold, as the papers print them; paired
t-tests of every loss against the baseline over the folds with ``scipy.stats.ttest_rel``)."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from medseg.files import atomic_path

from .spec import METRICS, Comparison

__all__ = ["collect", "paired_tests", "write_csv", "write_report"]


def write_csv(comparison: Comparison, records: Sequence[dict]) -> Path:
    """``results.csv``: one row per finished run and metric, one per failed run."""
    path = comparison.out / "results.csv"
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["network", "loss", "fold", "status", "metric", "value", "error"])
        for record in records:
            if record["status"] != "ok":
                writer.writerow([record["network"], record["loss"], record["fold"], "failed", "", "", record["error"]])
                continue
            for metric, value in record["metrics"].items():
                writer.writerow([record["network"], record["loss"], record["fold"], "ok", metric, value, ""])
    return path


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
