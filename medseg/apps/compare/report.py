"""The comparison's tables: ``results.csv``, ``statistics.csv`` and ``report.md``.

- ``results.csv``: a row per finished run and metric (``case`` empty: the run's mean over its test cases, and its
  epoch of convergence) and a row per test case and metric (``case``: the image file), a row per failed run;
- ``statistics.csv``: each loss against the baseline per network and tested metric
  (:mod:`~medseg.apps.compare.statistics`: per-case Wilcoxon test, bootstrap interval, fold t-test, Holm, seed
  noise, verdict);
- ``report.md``: the verdicts, then per network and metric the papers' table (losses as rows, folds and
  mean ± std as columns, each fold's value its mean over seeds, the best of each column in bold).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medseg.files import atomic_path

from .spec import METRICS, Comparison, metric_title
from .statistics import BOOTSTRAP, LossTest, compare_with_baseline, fold_means

__all__ = ["RESULT_COLUMNS", "write_csv", "write_report", "write_statistics"]

RESULT_COLUMNS = ("network", "loss", "fold", "seed", "status", "case", "metric", "value", "error")


def write_csv(comparison: Comparison, records: Sequence[dict]) -> Path:
    """``results.csv`` (see the module docstring)."""
    path = comparison.out / "results.csv"
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, RESULT_COLUMNS, restval="")
        writer.writeheader()
        for record in records:
            run = {key: record[key] for key in ("network", "loss", "fold", "seed")}
            if record["status"] != "ok":
                writer.writerow({**run, "status": "failed", "error": record["error"]})
                continue
            for metric, value in record["metrics"].items():
                writer.writerow({**run, "status": "ok", "metric": metric, "value": value})
            for case, metrics in record.get("cases", {}).items():
                for metric, value in metrics.items():
                    writer.writerow({**run, "status": "ok", "case": case, "metric": metric, "value": value})
    return path


def write_statistics(comparison: Comparison, tests: Sequence[LossTest]) -> Path:
    """``statistics.csv``: a row per :class:`~medseg.apps.compare.statistics.LossTest`."""
    path = comparison.out / "statistics.csv"
    columns = list(LossTest.__dataclass_fields__)
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, columns)
        writer.writeheader()
        writer.writerows(test.row() for test in tests)
    return path


def _number(value: float, digits: int = 4) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.2g}"


def _table(values: Mapping[str, Mapping[int, float]], folds: int, higher: bool) -> list[str]:
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
            text = _number(value)
            if column is means and np.isfinite(value):
                text = f"{value:.4f} ± {_number(stds[loss])}"
            cells.append(f"**{text}**" if winner is not None and value == winner else text)
        rows.append(f"| {loss} | " + " | ".join(cells) + " |")
    return rows


def _verdicts(tests: Sequence[LossTest], baseline: str) -> list[str]:
    rows = [
        f"Each loss against `{baseline}`, test cases paired (each case's value averaged over the seeds): mean "
        f"difference with its {BOOTSTRAP['confidence_level']:.0%} bootstrap interval, Wilcoxon signed-rank p and the "
        "fold means' paired t-test p (raw / Holm-adjusted across the losses), the seed noise (SD of a run's test "
        "mean between seeds, this loss / the baseline), and the verdict (docs/comparisons.md says how it is "
        "reached).",
        "",
        "| metric | loss | Δ mean [95 % CI] | cases | Wilcoxon p (Holm) | folds | t-test p (Holm) | seeds | seed SD | "
        "verdict |",
        "|---|---|---|---:|---|---:|---|---:|---|---|",
    ]
    for test in tests:
        rows.append(
            f"| {metric_title(test.metric)} | {test.loss} | {test.mean_difference:+.4f} [{test.ci_low:+.4f}, "
            f"{test.ci_high:+.4f}] | {test.cases} | {_p(test.wilcoxon_p)} ({_p(test.wilcoxon_p_holm)}) | "
            f"{test.folds} | {_p(test.t_p)} ({_p(test.t_p_holm)}) | {test.seeds} | {_number(test.seed_sd)} / "
            f"{_number(test.seed_sd_baseline)} | **{test.verdict}** |"
        )
    return [*rows, ""]


def write_report(comparison: Comparison, records: Sequence[dict], tests: Sequence[LossTest] | None = None) -> Path:
    """``report.md`` (see the module docstring); ``tests``: the statistics, computed here when not given."""
    if tests is None:
        tests = compare_with_baseline(
            records, comparison.losses, comparison.baseline, metrics=comparison.tested_metrics
        )
    lines = [
        "# Loss comparison",
        "",
        f"Bundle `{comparison.bundle.name}`, datalist `{comparison.datalist}`, {comparison.folds} folds × seeds "
        f"{', '.join(map(str, comparison.seeds))}; budget per run: {comparison.budget}"
        + (f", overrides {comparison.overrides}" if comparison.overrides else "")
        + ".",
        "",
    ]
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        lines += ["Failed runs:", ""]
        lines += [f"- {r['network']} {r['loss']} fold {r['fold']} seed {r['seed']}: {r['error']}" for r in failed]
        lines.append("")
    for network, metrics in fold_means(records).items():
        lines += [f"## {network}", ""]
        network_tests = [test for test in tests if test.network == network]
        if network_tests:
            lines += _verdicts(network_tests, comparison.baseline)
        for metric, (title, higher) in METRICS.items():
            if metric in metrics:
                values = {loss: metrics[metric][loss] for loss in comparison.losses if loss in metrics[metric]}
                lines += [f"### {title}", "", *_table(values, comparison.folds, higher), ""]
    path = comparison.out / "report.md"
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n")
    return path
