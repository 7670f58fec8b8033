"""Training and evaluation workflows on MONAI's Ignite engines: assembly, metrics, handlers, SegCaps batches."""

from .capsule import PrepareBatchSegCaps
from .handlers import (
    AtomicCheckpointSaver,
    AtomicDiskSaver,
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
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
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
    "all_foreground_dice",
    "binary_postprocessing",
    "cohen_kappa",
    "pixel_accuracy",
    "segmentation_metrics",
    "supervised_workflow",
]
