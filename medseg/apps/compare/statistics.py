"""The comparison's statistics: each loss against the baseline, per test case and per fold, beside the seed noise.

For a network, a metric (IoU, Dice: :data:`~medseg.apps.compare.spec.TESTED_METRICS`) and a loss ``l`` against the
baseline ``b``, on the test cases both have (the same cases: every fold's test set, each case once):

- per case ``c``, its value averaged over the seeds, ``x_l(c)`` and ``x_b(c)``; the differences
  ``d(c) = x_l(c) − x_b(c)`` and their mean, the between-loss gap;
- Wilcoxon's signed-rank test of the ``d(c)`` (``scipy.stats.wilcoxon``, two-sided), the cases paired;
- a 95 % bootstrap interval of the mean of ``d`` (``scipy.stats.bootstrap``, BCa, 9,999 resamples of the cases,
  generator seeded with 0, so that the interval is the same each time the report is written);
- the fold means' paired t-test (``scipy.stats.ttest_rel`` over the folds, each fold's value its mean over seeds),
  the papers' test;
- the seed noise: for each loss, the standard deviation of a run's test mean between seeds of the same fold,
  pooled over the folds (``√ mean_k var_seeds``), and of the two losses ``s = √((s_l² + s_b²) / 2)``;
- Holm's correction (``statsmodels.stats.multitest.multipletests``) of each test's p-values across the losses
  compared with the baseline, for each network and metric.

The verdict: **better** (or **worse**) when the Holm-adjusted Wilcoxon p is below ``alpha``, the bootstrap interval
excludes 0 on the same side, and the gap is larger than the seed noise ``s``; otherwise "not distinguishable from
<baseline> beyond seed noise". The last condition matters because the cases of one run share its training: the
per-case test treats them as independent and cannot see how far another seed moves them all. With one seed the
noise is not measured and the verdict says so.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .spec import METRICS, TESTED_METRICS, metric_base

__all__ = [
    "LossTest",
    "case_means",
    "compare_with_baseline",
    "fold_means",
    "holm",
    "seed_spread",
    "verdict",
]

#: Bootstrap settings of the mean difference's interval (fixed, so the report is reproducible).
BOOTSTRAP = {"confidence_level": 0.95, "n_resamples": 9999, "method": "BCa"}
BOOTSTRAP_SEED = 0


@dataclass
class LossTest:
    """One loss against the baseline on one network and metric (see the module docstring)."""

    network: str
    metric: str
    loss: str
    baseline: str
    cases: int
    mean_difference: float
    ci_low: float
    ci_high: float
    wilcoxon_p: float
    wilcoxon_p_holm: float
    folds: int
    t: float
    t_p: float
    t_p_holm: float
    seeds: int
    seed_sd: float
    seed_sd_baseline: float
    verdict: str = ""

    def row(self) -> dict[str, object]:
        return asdict(self)


def _ok(records: Sequence[Mapping]) -> list[Mapping]:
    return [record for record in records if record["status"] == "ok"]


def fold_means(records: Sequence[Mapping]) -> dict[str, dict[str, dict[str, dict[int, float]]]]:
    """``{network: {metric: {loss: {fold: value}}}}``: each run's mean over its test cases, averaged over seeds."""
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for record in _ok(records):
        for metric, value in record["metrics"].items():
            values[record["network"]][metric][record["loss"]][record["fold"]].append(float(value))
    return {
        network: {
            metric: {loss: {fold: float(np.mean(v)) for fold, v in sorted(per.items())} for loss, per in losses.items()}
            for metric, losses in metrics.items()
        }
        for network, metrics in values.items()
    }


def case_means(records: Sequence[Mapping]) -> dict[str, dict[str, dict[str, dict[tuple[int, str], float]]]]:
    """``{network: {metric: {loss: {(fold, case): value}}}}``: each test case's value averaged over the seeds."""
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for record in _ok(records):
        for case, metrics in record.get("cases", {}).items():
            for metric, value in metrics.items():
                values[record["network"]][metric][record["loss"]][(record["fold"], case)].append(float(value))
    return {
        network: {
            metric: {loss: {key: float(np.mean(v)) for key, v in per.items()} for loss, per in losses.items()}
            for metric, losses in metrics.items()
        }
        for network, metrics in values.items()
    }


def seed_spread(records: Sequence[Mapping], network: str, metric: str, loss: str) -> tuple[float, int]:
    """The pooled standard deviation over seeds of a run's test mean, ``√ mean_k var_seeds(k)`` over the folds
    with two seeds or more, and the number of seeds; NaN when no fold has two."""
    per_fold: dict[int, list[float]] = defaultdict(list)
    for record in _ok(records):
        if (record["network"], record["loss"]) == (network, loss) and metric in record["metrics"]:
            per_fold[record["fold"]].append(float(record["metrics"][metric]))
    variances = [np.var(values, ddof=1) for values in per_fold.values() if len(values) > 1]
    seeds = max((len(values) for values in per_fold.values()), default=0)
    return (math.sqrt(float(np.mean(variances))) if variances else math.nan), seeds


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (``statsmodels``' ``multipletests(method="holm")``); NaN stays NaN, out of the family."""
    finite = [i for i, p in enumerate(p_values) if np.isfinite(p)]
    adjusted = [math.nan] * len(p_values)
    if finite:
        for i, p in zip(finite, multipletests([p_values[i] for i in finite], method="holm")[1]):
            adjusted[i] = float(p)
    return adjusted


def _wilcoxon(differences: np.ndarray) -> float:
    if differences.size < 2:
        return math.nan
    if not np.any(differences):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.wilcoxon(differences).pvalue)


def _bootstrap(differences: np.ndarray) -> tuple[float, float]:
    if differences.size < 3 or np.ptp(differences) == 0:
        return (float(differences.mean()),) * 2 if differences.size else (math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = stats.bootstrap(
            (differences,), np.mean, rng=np.random.default_rng(BOOTSTRAP_SEED), **BOOTSTRAP
        ).confidence_interval
    return float(interval.low), float(interval.high)


def _paired_t(values: Mapping[int, float], baseline: Mapping[int, float]) -> tuple[float, float, int]:
    folds = sorted(set(values) & set(baseline))
    if len(folds) < 2:
        return math.nan, math.nan, len(folds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_rel([values[k] for k in folds], [baseline[k] for k in folds])
    return float(result.statistic), float(result.pvalue), len(folds)


def verdict(test: LossTest, higher_is_better: bool = True, alpha: float = 0.05) -> str:
    """The plain verdict of ``test`` (see the module docstring)."""
    gap = test.mean_difference if higher_is_better else -test.mean_difference
    low, high = (test.ci_low, test.ci_high) if higher_is_better else (-test.ci_high, -test.ci_low)
    significant = test.wilcoxon_p_holm < alpha and (low > 0 or high < 0) and (gap > 0) == (low > 0)
    noise = math.sqrt((test.seed_sd**2 + test.seed_sd_baseline**2) / 2)
    undecided = f"not distinguishable from {test.baseline} beyond seed noise"
    if not significant:
        return undecided if np.isfinite(noise) else f"not distinguishable from {test.baseline} (one seed)"
    direction = "better" if gap > 0 else "worse"
    if not np.isfinite(noise):
        return f"{direction} than {test.baseline} (one seed: seed noise not measured)"
    return f"{direction} than {test.baseline}" if abs(gap) > noise else undecided


def compare_with_baseline(
    records: Sequence[Mapping],
    losses: Sequence[str],
    baseline: str,
    alpha: float = 0.05,
    metrics: Sequence[str] = TESTED_METRICS,
) -> list[LossTest]:
    """Every loss of ``losses`` but the baseline against it, for each network and metric of ``metrics`` (a label's
    value of one: ``test_mean_dice_hair``), Holm-corrected across the losses."""
    cases, folds = case_means(records), fold_means(records)
    tests: list[LossTest] = []
    for network in cases:
        for metric in metrics:
            per_loss = cases[network].get(metric, {})
            if baseline not in per_loss:
                continue
            family = [
                _one_test(records, network, metric, loss, baseline, per_loss, folds)
                for loss in losses
                if loss != baseline and loss in per_loss
            ]
            for name, adjusted in (("wilcoxon_p", "wilcoxon_p_holm"), ("t_p", "t_p_holm")):
                for test, p in zip(family, holm([getattr(test, name) for test in family])):
                    setattr(test, adjusted, p)
            for test in family:
                test.verdict = verdict(test, METRICS[metric_base(metric)][1], alpha)
            tests += family
    return tests


def _one_test(
    records: Sequence[Mapping],
    network: str,
    metric: str,
    loss: str,
    baseline: str,
    per_loss: Mapping[str, Mapping[tuple[int, str], float]],
    folds: Mapping[str, Mapping[str, Mapping[str, Mapping[int, float]]]],
) -> LossTest:
    common = sorted(set(per_loss[loss]) & set(per_loss[baseline]))
    differences = np.array([per_loss[loss][key] - per_loss[baseline][key] for key in common], dtype=np.float64)
    differences = differences[np.isfinite(differences)]
    low, high = _bootstrap(differences)
    by_fold = folds[network][metric]
    t, t_p, n_folds = _paired_t(by_fold.get(loss, {}), by_fold.get(baseline, {}))
    spread, seeds = seed_spread(records, network, metric, loss)
    spread_baseline, _ = seed_spread(records, network, metric, baseline)
    return LossTest(
        network=network,
        metric=metric,
        loss=loss,
        baseline=baseline,
        cases=int(differences.size),
        mean_difference=float(differences.mean()) if differences.size else math.nan,
        ci_low=low,
        ci_high=high,
        wilcoxon_p=_wilcoxon(differences),
        wilcoxon_p_holm=math.nan,
        folds=n_folds,
        t=t,
        t_p=t_p,
        t_p_holm=math.nan,
        seeds=seeds,
        seed_sd=spread,
        seed_sd_baseline=spread_baseline,
    )
