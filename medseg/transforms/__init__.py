"""MONAI dictionary transforms and per-task pre-processing presets."""

from .masks import MergeMasks, MergeMasksd
from .presets import cxr_transforms

__all__ = ["MergeMasks", "MergeMasksd", "cxr_transforms"]
