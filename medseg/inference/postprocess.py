"""From a probability map to a mask, as SegCaps' test code does: threshold, largest component(s), holes filled.

- threshold: a fixed value (0.5) or Otsu's (``skimage.filters.threshold_otsu`` of the probabilities; SegCaps'
  default);
- keep the ``n`` largest connected components (``skimage.measure.label``, full connectivity), a component after
  the first only when it is at least ``min_ratio`` of the largest: SegCaps keeps the second lung when it is at
  least a fifth of the first. MONAI's ``KeepLargestConnectedComponent`` keeps ``n`` components but has no such
  ratio, hence this function;
- fill holes (``scipy.ndimage.binary_fill_holes``), in 3D for volumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import label

__all__ = ["MaskPostprocessing", "keep_largest_components"]


def keep_largest_components(mask: np.ndarray, n: int, min_ratio: float = 0.0) -> np.ndarray:
    """The ``n`` largest connected components of a boolean mask, each after the first only if at least
    ``min_ratio`` times the size of the largest."""
    labels, count = label(mask, return_num=True, connectivity=mask.ndim)
    if count <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1][:n]
    kept = [index + 1 for index in order if sizes[index] >= min_ratio * sizes[order[0]]]
    return np.isin(labels, kept)


@dataclass(frozen=True)
class MaskPostprocessing:
    """Probabilities ``(...)`` -> binary mask (uint8) by threshold, largest component(s) and hole filling.

    Args:
        threshold: a probability in (0, 1), or ``"otsu"``.
        keep_largest: how many connected components to keep (``None``: all).
        min_ratio: a kept component after the first must be at least this share of the largest.
        fill_holes: fill the holes of the mask.
    """

    threshold: float | str = 0.5
    keep_largest: int | None = None
    min_ratio: float = 0.0
    fill_holes: bool = False

    def __post_init__(self) -> None:
        if self.threshold != "otsu" and not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise ValueError(f"threshold must be a probability in (0, 1) or 'otsu', got {self.threshold!r}")
        if self.keep_largest is not None and self.keep_largest < 1:
            raise ValueError(f"keep_largest must be at least 1, got {self.keep_largest}")

    def level(self, probabilities: np.ndarray) -> float:
        """The threshold applied to ``probabilities`` (Otsu's of the map itself, or the fixed value)."""
        if self.threshold != "otsu":
            return float(self.threshold)
        if float(probabilities.max()) - float(probabilities.min()) < 1e-6:
            return 0.5  # a constant map has no Otsu threshold
        return float(threshold_otsu(probabilities))

    def __call__(self, probabilities: np.ndarray) -> np.ndarray:
        mask = probabilities > self.level(probabilities)
        if self.keep_largest is not None:
            mask = keep_largest_components(mask, self.keep_largest, self.min_ratio)
        if self.fill_holes:
            mask = ndimage.binary_fill_holes(mask)
        return mask.astype(np.uint8)
