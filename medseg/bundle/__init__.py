"""What the MONAI bundles in ``bundles/`` call from their configs: settings checks, subsets, components, summaries.

The bundles' JSON declares MONAI's engines, handlers, inferers and metrics; any Python they need beyond MONAI
lives here (and in :mod:`medseg.engines`), never in the bundle folders.
"""

from .components import (
    LR_SCHEDULES,
    build_loss,
    build_network,
    has_reconstruction,
    lr_scheduler,
    postprocessing,
    resume_handlers,
    training_pos_weight,
    training_prepare_batch,
    transforms,
)
from .settings import (
    MODEL_SELECTIONS,
    TRAINED_SETTINGS,
    SettingsError,
    check_checkpoint,
    check_settings,
    check_trained_settings,
    save_trained_settings,
)
from .subsets import SUBSETS, inference_entries, load_subsets, official_subsets, prepared_datalist
from .summary import evaluation_summary, print_outputs, write_summary

__all__ = [
    "LR_SCHEDULES",
    "MODEL_SELECTIONS",
    "SUBSETS",
    "TRAINED_SETTINGS",
    "SettingsError",
    "build_loss",
    "build_network",
    "check_checkpoint",
    "check_settings",
    "check_trained_settings",
    "evaluation_summary",
    "has_reconstruction",
    "inference_entries",
    "load_subsets",
    "lr_scheduler",
    "official_subsets",
    "postprocessing",
    "prepared_datalist",
    "print_outputs",
    "resume_handlers",
    "save_trained_settings",
    "training_pos_weight",
    "training_prepare_batch",
    "transforms",
    "write_summary",
]
