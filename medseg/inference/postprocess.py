"""From a probability map to a mask, as SegCaps' test code does: threshold, largest component(s), holes filled.

- threshold: a fixed value (0.5) or Otsu's (``skimage.filters.threshold_otsu`` of the probabilities; SegCaps'
  default);
- keep the ``n`` largest connected components (``skimage.measure.label``, full connectivity), a component after
  the first only when it is at least ``min_ratio`` of the largest: SegCaps keeps the second lung when it is at
  least a fifth of the first. MONAI's ``KeepLargestConnectedComponent`` keeps ``n`` components but has no such
  ratio, hence this function;
- fill holes (``scipy.ndimage.binary_fill_holes``), in 3D for volumes;
- optionally first, clear the border (``skimage.segmentation.clear_border``): the components that touch the
  in-plane image border go, slice by slice for a volume (a lung may reach the first or last slice of a scan; the
  air around the body and under the table reaches the edge of every slice). Not in SegCaps' code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import label
from skimage.segmentation import clear_border

__all__ = ["MaskPostprocessing", "clear_inplane_border", "keep_largest_components"]


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


def clear_inplane_border(mask: np.ndarray) -> np.ndarray:
    """``mask`` without the components that touch the in-plane border: of a 2D mask, or of each slice along the
    last axis of a volume (MONAI's (x, y, z) order: axial slices)."""
    if mask.ndim == 2:
        return clear_border(mask)
    return np.stack([clear_border(mask[..., k]) for k in range(mask.shape[-1])], axis=-1)


@dataclass(frozen=True)
class MaskPostprocessing:
    """Probabilities ``(...)`` -> binary mask (uint8) by threshold, border clearing, largest component(s), hole filling.

    Args:
        threshold: a probability in (0, 1), or ``"otsu"``.
        keep_largest: how many connected components to keep (``None``: all).
        min_ratio: a kept component after the first must be at least this share of the largest.
        fill_holes: fill the holes of the mask.
        clear_border: first remove the components that touch the in-plane border (:func:`clear_inplane_border`).
    """

    threshold: float | str = 0.5
    keep_largest: int | None = None
    min_ratio: float = 0.0
    fill_holes: bool = False
    clear_border: bool = False

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
        if self.clear_border:
            mask = clear_inplane_border(mask)
        if self.keep_largest is not None:
            mask = keep_largest_components(mask, self.keep_largest, self.min_ratio)
        if self.fill_holes:
            mask = ndimage.binary_fill_holes(mask)
        return mask.astype(np.uint8)
