"""Ignite handlers the bundles need beyond MONAI's, one a module as in ``monai.handlers``: atomic metric reports,
resumable state, a wall-clock budget, the averaged checkpoint, the training record and validation overlays."""

from .best_metric import BestMetricState
from .budget import WallClockBudget
from .early_stop import ResumableEarlyStop
from .final_validation import FinalValidation
from .last_state import LastStateSaver, ResumeLoader
from .metrics_saver import AtomicMetricsSaver
from .training_report import TrainingReport
from .validation_overlays import ValidationOverlays
from .weight_average import WEIGHT_SELECTIONS, WeightAverageSaver, average_state_dicts

__all__ = [
    "WEIGHT_SELECTIONS",
    "AtomicMetricsSaver",
    "BestMetricState",
    "FinalValidation",
    "LastStateSaver",
    "ResumableEarlyStop",
    "ResumeLoader",
    "TrainingReport",
    "ValidationOverlays",
    "WallClockBudget",
    "WeightAverageSaver",
    "average_state_dicts",
]
