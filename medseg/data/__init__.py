"""Dataset adapters (published layouts to MONAI datalists), splits, axial slicing and synthetic datasets."""

from .ct import ct_datalist
from .cxr import (
    CXR_LAYOUTS,
    cxr_datalist,
    detect_cxr_layout,
    montgomery_datalist,
    shenzhen_datalist,
)
from .faces import HELEN_SPLIT_FILES, helen_datalist, lfw_datalist
from .layout import BadPair, LayoutError, MissingFileError, NameRule, folder_datalist, match_pairs
from .luna16 import LUNA16_MASK_DIR, luna16_datalist
from .skin import SKIN_LAYOUTS, detect_skin_layout, isic_datalist, ph2_datalist, skin_datalist
from .slices import SliceDataset, SliceSampler, foreground_slices
from .splits import (
    SUBSETS,
    Fold,
    assign_folds,
    carve_validation,
    fold_datalists,
    kfold_splits,
    official_subsets,
    source_split,
    training_split,
)

__all__ = [
    "CXR_LAYOUTS",
    "HELEN_SPLIT_FILES",
    "LUNA16_MASK_DIR",
    "SKIN_LAYOUTS",
    "SUBSETS",
    "BadPair",
    "Fold",
    "LayoutError",
    "MissingFileError",
    "NameRule",
    "SliceDataset",
    "SliceSampler",
    "assign_folds",
    "carve_validation",
    "ct_datalist",
    "cxr_datalist",
    "detect_cxr_layout",
    "detect_skin_layout",
    "fold_datalists",
    "folder_datalist",
    "foreground_slices",
    "helen_datalist",
    "isic_datalist",
    "kfold_splits",
    "lfw_datalist",
    "luna16_datalist",
    "match_pairs",
    "montgomery_datalist",
    "official_subsets",
    "ph2_datalist",
    "shenzhen_datalist",
    "skin_datalist",
    "source_split",
    "training_split",
]
