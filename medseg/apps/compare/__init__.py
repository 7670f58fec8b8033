"""``medseg compare-losses``: k-fold × seeds × losses × networks through a bundle, with the tests that decide.

- :mod:`~medseg.apps.compare.spec`: :class:`Comparison` (what to compare, how) and its :class:`Run` grid;
- :mod:`~medseg.apps.compare.inputs`: the datalist checked before the first run (files there, case names unique);
- :mod:`~medseg.apps.compare.execution`: one run trained and evaluated through the bundle into its folder;
- :mod:`~medseg.apps.compare.local` and :mod:`~medseg.apps.compare.cluster`: the backends (processes on this
  machine, or Ray tasks on a cluster);
- :mod:`~medseg.apps.compare.runner`: :func:`run_comparison`, the grid through a backend, resumable;
- :mod:`~medseg.apps.compare.statistics`: each loss against the baseline (per-case Wilcoxon, bootstrap interval,
  fold t-test, Holm, seed noise, verdict);
- :mod:`~medseg.apps.compare.report`: ``results.csv``, ``statistics.csv`` and ``report.md``;
- :mod:`~medseg.apps.compare.plots`: box plots per loss, learning curves, test cases segmented by each loss.

Per run and test case: Dice, IoU, pixel accuracy, Cohen's kappa, 95 % Hausdorff distance and the expected
calibration error of the probabilities (the bundle's evaluation); per run also the epoch of convergence (the best
validation epoch, where early stopping counts from).
"""

from .execution import RunMismatchError
from .inputs import datalist_problems
from .report import write_csv, write_report, write_statistics
from .runner import run_comparison, write_results
from .spec import BACKENDS, METRICS, TESTED_METRICS, Comparison, Run
from .statistics import LossTest, compare_with_baseline

__all__ = [
    "BACKENDS",
    "METRICS",
    "TESTED_METRICS",
    "Comparison",
    "LossTest",
    "Run",
    "RunMismatchError",
    "compare_with_baseline",
    "datalist_problems",
    "run_comparison",
    "write_csv",
    "write_report",
    "write_results",
    "write_statistics",
]
