"""Training and evaluation workflows on MONAI's Ignite engines: assembly, metrics, handlers, SegCaps batches."""

from .averaging import WEIGHT_SELECTIONS, WeightAverageSaver, average_state_dicts
from .capsule import PrepareBatchSegCaps
from .handlers import (
    AtomicMetricsSaver,
    BestMetricState,
    LastStateSaver,
    ResumableEarlyStop,
    ResumeLoader,
    TrainingReport,
    ValidationOverlays,
    WallClockBudget,
    all_foreground_dice,
)
from .metrics import (
    METRIC_NAMES,
    CohenKappa,
    CohenKappaMetric,
    ConfusionScoreMetric,
    PixelAccuracy,
    PixelAccuracyMetric,
    cohen_kappa,
    pixel_accuracy,
    segmentation_metrics,
)
from .schedules import BudgetCosineLR
from .workflows import VAL_METRIC, binary_postprocessing, supervised_workflow

__all__ = [
    "METRIC_NAMES",
    "VAL_METRIC",
    "WEIGHT_SELECTIONS",
    "AtomicMetricsSaver",
    "BestMetricState",
    "BudgetCosineLR",
    "CohenKappa",
    "CohenKappaMetric",
    "ConfusionScoreMetric",
    "LastStateSaver",
    "PixelAccuracy",
    "PixelAccuracyMetric",
    "PrepareBatchSegCaps",
    "ResumableEarlyStop",
    "ResumeLoader",
    "TrainingReport",
    "ValidationOverlays",
    "WallClockBudget",
    "WeightAverageSaver",
    "all_foreground_dice",
    "average_state_dicts",
    "binary_postprocessing",
    "cohen_kappa",
    "pixel_accuracy",
    "segmentation_metrics",
    "supervised_workflow",
]
