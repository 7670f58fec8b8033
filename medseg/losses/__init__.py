"""Segmentation losses with MONAI's loss API."""

from .weights import compute_pos_weight

__all__ = ["compute_pos_weight"]
