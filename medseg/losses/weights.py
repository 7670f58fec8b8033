"""Class-balance weights computed from training masks."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from monai.config import NdarrayOrTensor

__all__ = ["compute_pos_weight"]


def compute_pos_weight(masks: Iterable[NdarrayOrTensor]) -> float:
    """Negative/positive pixel ratio over the masks that contain foreground (SegCaps' rule).

    LaLonde & Bagci (2018) weight the positive class of their weighted BCE by the ratio of
    background to foreground pixels, counted over the training masks that have at least one
    foreground pixel; masks with no foreground are left out of both counts. A pixel is foreground
    where the mask is greater than zero.

    Raises:
        ValueError: when no mask has a foreground pixel, or when the masks with foreground have no background
            pixel (every pixel foreground): the ratio would be 0, which no weighted loss can use.
    """
    negative = positive = 0
    for mask in masks:
        foreground = int((mask > 0).sum())
        if foreground:
            positive += foreground
            negative += int(np.prod(mask.shape)) - foreground
    if positive == 0:
        raise ValueError("compute_pos_weight: no mask has a foreground pixel")
    if negative == 0:
        raise ValueError(
            "compute_pos_weight: the masks with foreground have no background pixel (all foreground), "
            "so there is no negative/positive ratio to weigh the positive class by"
        )
    return negative / positive
