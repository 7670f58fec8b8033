"""Training and evaluation on MONAI's Ignite engines: the handlers, metrics and schedules MONAI lacks, and the batch
preparation of SegCaps. The bundles declare MONAI's ``SupervisedTrainer`` and ``SupervisedEvaluator`` with them."""

from .capsule import PrepareBatchSegCaps, has_reconstruction, training_prepare_batch
from .handlers import (
    WEIGHT_SELECTIONS,
    AtomicMetricsSaver,
    BestMetricState,
    FinalValidation,
    LastStateSaver,
    ResumableEarlyStop,
    ResumeLoader,
    TrainingReport,
    ValidationOverlays,
    WallClockBudget,
    WeightAverageSaver,
    average_state_dicts,
)
from .metrics import (
    METRIC_NAMES,
    CohenKappa,
    CohenKappaMetric,
    ConfusionScoreMetric,
    PixelAccuracy,
    PixelAccuracyMetric,
    all_foreground_dice,
    cohen_kappa,
    pixel_accuracy,
    segmentation_metrics,
)
from .schedules import BudgetCosineLR

__all__ = [
    "METRIC_NAMES",
    "WEIGHT_SELECTIONS",
    "AtomicMetricsSaver",
    "BestMetricState",
    "BudgetCosineLR",
    "CohenKappa",
    "CohenKappaMetric",
    "ConfusionScoreMetric",
    "FinalValidation",
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
    "cohen_kappa",
    "has_reconstruction",
    "pixel_accuracy",
    "segmentation_metrics",
    "training_prepare_batch",
]
