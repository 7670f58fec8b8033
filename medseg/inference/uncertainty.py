"""How sure a model is of a case: the entropy of its foreground probability, where it matters, and a volume interval.

The probability ``p`` a model gives is already the mean over its test-time flips and shifts
(:mod:`medseg.inferers`), the deterministic form of test-time augmentation (Wang et al. 2019, "Aleatoric
uncertainty estimation with test-time augmentation for medical image segmentation"): a voxel where the augmented
copies disagree, or the network hesitates, gets a ``p`` far from 0 and 1. Per voxel, the binary entropy in bits

.. math::
    H(p) = -p \\log_2 p - (1 - p) \\log_2 (1 - p) \\in [0, 1]

is the uncertainty map. Inside a mask and far from it the entropy of a good model is near 0 whatever the case;
what tells a hard case is the entropy along the mask's border, so the summary gives its mean over the **border
band**: the voxels within ``band`` pixels of the mask's boundary (in-plane, slice by slice for a volume, as a 2D
network sees it; the dilated mask less the eroded one, SciPy's morphology). ``medseg infer`` counts the band in
pixels of the grid the network saw (:data:`BAND` of them; a radiograph resized to 256x256 and back has its border
blurred over proportionally more of its own pixels), so that the figure does not depend on the input's size. An
empty mask has an empty band, and a border entropy of 0. The **volume interval** is the
foreground volume at thresholds ``1 - alpha`` and ``alpha`` of the same probabilities (uncleaned): what is
foreground for a confident reading, and what might be.

For a model of several labels, the map is the entropy over the classes, ``-Σ_c p_c log2 p_c`` (from 0 up to
``log2(labels + 1)`` bits), the band follows the border of every label, and the interval is of the foreground,
``1 - p_background``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["UncertaintySummary", "binary_entropy", "border_band", "class_entropy", "uncertainty_summary"]

#: Pixels either side of a mask's boundary that its border band covers.
BAND = 3
#: The volume interval's thresholds: ``1 - ALPHA`` (the confident foreground) and ``ALPHA`` (the possible one).
ALPHA = 0.1


def binary_entropy(probabilities: np.ndarray) -> np.ndarray:
    """The entropy in bits of Bernoulli(``p``) per voxel (0 where ``p`` is 0 or 1), as float32."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.nan_to_num(entropy, nan=0.0).astype(np.float32)


def class_entropy(probabilities: np.ndarray) -> np.ndarray:
    """The entropy in bits over the classes (axis 0: background and labels) per voxel, as float32."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.nan_to_num(p * np.log2(p), nan=0.0)
    return (-terms.sum(axis=0)).astype(np.float32)


def border_band(mask: np.ndarray, band: int = BAND) -> np.ndarray:
    """The voxels within ``band`` pixels of ``mask``'s boundary: its dilation less its erosion, in the first two
    axes only (medseg's (x, y[, z]) order: in-plane, slice by slice for a volume). A label map (values above 1)
    gives the union of each label's band."""
    labels = np.unique(mask)
    if labels.max(initial=0) > 1:
        bands = [border_band(mask == value, band) for value in labels if value > 0]
        return np.logical_or.reduce(bands)
    mask = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(2, 1)
    if mask.ndim == 3:  # no connection between slices
        structure = np.stack([np.zeros_like(structure), structure, np.zeros_like(structure)], axis=-1)
    dilated = ndimage.binary_dilation(mask, structure, iterations=band)
    eroded = ndimage.binary_erosion(mask, structure, iterations=band, border_value=1)
    return dilated & ~eroded


@dataclass(frozen=True)
class UncertaintySummary:
    """A case's uncertainty: the border band's mean entropy, the whole image's, and the volume interval."""

    border_entropy: float
    mean_entropy: float
    band_voxels: int
    volume_interval: tuple[float, float]

    def as_record(self, unit: str) -> dict:
        """The summary's fields (``unit``: ``ml`` for a volume, ``mm2`` for an image)."""
        return {
            "border_entropy": round(self.border_entropy, 6),
            "mean_entropy": round(self.mean_entropy, 6),
            "border_band_voxels": self.band_voxels,
            f"foreground_{unit}_interval": [round(value, 4) for value in self.volume_interval],
        }


def uncertainty_summary(
    probabilities: np.ndarray, mask: np.ndarray, unit_size: float, band: int = BAND, alpha: float = ALPHA
) -> tuple[UncertaintySummary, np.ndarray]:
    """The summary of a case and its entropy map.

    Args:
        probabilities: the foreground probability on the input's grid; for several labels, the probability of
            each class, background first (``(labels + 1, ...)``).
        mask: the case's mask or label map (after its post-processing), whose border the band follows.
        unit_size: the size of a voxel in the interval's unit (mL, or mm² for an image).
        band: the band's half-width in pixels.
        alpha: the interval's thresholds are ``1 - alpha`` and ``alpha``.
    """
    several = probabilities.ndim == mask.ndim + 1
    if probabilities.shape[several:] != mask.shape:
        raise ValueError(f"probabilities of shape {probabilities.shape} and a mask of shape {mask.shape}")
    entropy = class_entropy(probabilities) if several else binary_entropy(probabilities)
    if several:
        probabilities = 1.0 - probabilities[0]  # the foreground's, for the interval
    in_band = border_band(mask, band)
    border = float(entropy[in_band].mean()) if in_band.any() else 0.0
    interval = (
        float((probabilities >= 1 - alpha).sum() * unit_size),
        float((probabilities >= alpha).sum() * unit_size),
    )
    summary = UncertaintySummary(border, float(entropy.mean()), int(in_band.sum()), interval)
    return summary, entropy
