"""Class-balance weights computed from training masks."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from monai.config import NdarrayOrTensor

__all__ = ["compute_class_weights", "compute_pos_weight"]


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


def compute_class_weights(masks: Iterable[NdarrayOrTensor], labels: int) -> list[float]:
    """Class weights of several labels for the weighted cross-entropy: the background's 1, each label's the ratio of
    background to that label's pixels, over the label maps (values 0 to ``labels``) or one-hot masks (background
    first) that contain any label; SegCaps' :func:`compute_pos_weight` when ``labels`` is 1.

    Raises:
        ValueError: when a label has no pixel, or no mask has background.
    """
    counts = np.zeros(labels + 1, dtype=np.int64)
    for mask in masks:
        values = np.asarray(mask)
        classes = values.argmax(axis=0) if values.ndim > 2 and values.shape[0] == labels + 1 else values
        found = np.bincount(np.asarray(classes, dtype=np.int64).ravel(), minlength=labels + 1)[: labels + 1]
        if found[1:].any():
            counts += found
    missing = [label for label in range(1, labels + 1) if counts[label] == 0]
    if missing or counts[0] == 0:
        what = f"label(s) {missing} have" if missing else "the background has"
        raise ValueError(f"compute_class_weights: {what} no pixel in the masks, so no weight to give")
    return [1.0, *(float(counts[0] / counts[label]) for label in range(1, labels + 1))]
