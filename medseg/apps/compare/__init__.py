"""``medseg compare-losses``: k-fold × losses × networks through a bundle, with the papers' tables and tests.

- :mod:`~medseg.apps.compare.spec`: :class:`Comparison` (what to compare, how) and its :class:`Run` grid;
- :mod:`~medseg.apps.compare.runner`: :func:`run_comparison`, the runs through the bundle, resumable;
- :mod:`~medseg.apps.compare.report`: ``results.csv`` and ``report.md`` (tables, paired t-tests);
- :mod:`~medseg.apps.compare.plots`: box plots per loss, learning curves, test cases segmented by each loss.

Per run: test Dice, IoU, pixel accuracy, Cohen's kappa and 95 % Hausdorff distance (the bundle's evaluation), and
the epoch of convergence (the best validation epoch, where early stopping counts from).
"""

from .report import collect, paired_tests, write_csv, write_report
from .runner import run_comparison, write_results
from .spec import METRICS, Comparison, Run

__all__ = [
    "METRICS",
    "Comparison",
    "Run",
    "collect",
    "paired_tests",
    "run_comparison",
    "write_csv",
    "write_report",
    "write_results",
]
