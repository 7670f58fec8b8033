"""Dataset adapters (published layouts to MONAI datalists), splits, slicing, ``medseg prepare`` and synthetic datasets."""

from .ct import ct_datalist
from .cxr import (
    CXR_LAYOUTS,
    cxr_datalist,
    cxr_folder_datalist,
    detect_cxr_layout,
    montgomery_datalist,
    shenzhen_datalist,
)
from .faces import HELEN_SPLIT_FILES, helen_datalist, lfw_datalist
from .layout import BadPair, LayoutError, MissingFileError, NameRule, match_pairs
from .luna16 import LUNA16_MASK_DIR, luna16_datalist
from .prepare import TASKS, PrepareReport, format_report, prepare_datalist
from .slices import SliceDataset, SliceSampler, foreground_slices
from .splits import Fold, assign_folds, fold_datalists, kfold_splits
from .synthetic import SYNTH_TASKS, synthesize

__all__ = [
    "CXR_LAYOUTS",
    "HELEN_SPLIT_FILES",
    "LUNA16_MASK_DIR",
    "SYNTH_TASKS",
    "TASKS",
    "BadPair",
    "Fold",
    "LayoutError",
    "MissingFileError",
    "NameRule",
    "PrepareReport",
    "SliceDataset",
    "SliceSampler",
    "assign_folds",
    "ct_datalist",
    "cxr_datalist",
    "cxr_folder_datalist",
    "detect_cxr_layout",
    "fold_datalists",
    "foreground_slices",
    "format_report",
    "helen_datalist",
    "kfold_splits",
    "lfw_datalist",
    "luna16_datalist",
    "match_pairs",
    "montgomery_datalist",
    "prepare_datalist",
    "shenzhen_datalist",
    "synthesize",
]
