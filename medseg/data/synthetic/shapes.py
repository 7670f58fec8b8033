"""Shape primitives and smooth noise shared by the synthetic generators."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["ellipse", "smooth_noise"]


def ellipse(
    shape: tuple[int, ...], center: tuple[float, ...], radii: tuple[float, ...], angle: float = 0.0
) -> np.ndarray:
    """Boolean mask of an ellipse (2D, rotated by ``angle`` radians) or an axis-aligned ellipsoid (3D).

    ``center`` and ``radii`` are in voxels, in the array's axis order.
    """
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    offsets = [g - c for g, c in zip(grids, center)]
    if len(shape) == 2 and angle:
        cos, sin = np.cos(angle), np.sin(angle)
        offsets = [cos * offsets[0] + sin * offsets[1], -sin * offsets[0] + cos * offsets[1]]
    return sum((o / r) ** 2 for o, r in zip(offsets, radii)) <= 1.0


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian noise low-pass filtered with ``sigma`` voxels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (field.std() + 1e-12)
