"""What the MONAI bundles in ``bundles/`` call from their configs: settings checks, subsets, the loss, schedules,
resume, the trained record and summaries; and which config files each workflow merges.

The bundles' JSON declares MONAI's engines, handlers, inferers and metrics; the model's network and pipeline come
from :mod:`medseg.pipeline`, and any other Python they need lives here (and in :mod:`medseg.engines`), never in the
bundle folders.
"""

from .checks import check_checkpoint, check_exported, check_training
from .configs import WORKFLOWS, config_files, config_list, read_config
from .errors import USER_ERRORS, report_errors_in_one_line, user_error
from .loss import build_loss, training_pos_weight
from .record import check_trained, record_settings, trained_settings
from .resume import resume_handlers
from .schedules import LR_SCHEDULES, lr_scheduler
from .subsets import case_name_formatter, inference_entries, load_subsets, prepared_datalist
from .summary import evaluation_summary, print_outputs, write_summary

__all__ = [
    "LR_SCHEDULES",
    "USER_ERRORS",
    "WORKFLOWS",
    "build_loss",
    "case_name_formatter",
    "check_checkpoint",
    "check_exported",
    "check_trained",
    "check_training",
    "config_files",
    "config_list",
    "evaluation_summary",
    "inference_entries",
    "load_subsets",
    "lr_scheduler",
    "prepared_datalist",
    "print_outputs",
    "read_config",
    "record_settings",
    "report_errors_in_one_line",
    "resume_handlers",
    "trained_settings",
    "training_pos_weight",
    "user_error",
    "write_summary",
]
