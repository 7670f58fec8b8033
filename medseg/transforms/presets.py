"""Per-task pre-processing pipelines, shared by training, evaluation, the bundles and the scripts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.transforms import Compose, EnsureTyped, LoadImaged, Resized, ScaleIntensityRanged

from .masks import MergeMasksd

__all__ = ["cxr_transforms"]


def cxr_transforms(spatial_size: Sequence[int] = (256, 256), image_key: str = "image", label_key: str = "label") -> Compose:
    """Chest X-ray pre-processing: load, merge and binarise lung masks, 8-bit intensity to [0, 1], resize.

    The image is resized with area averaging and the mask with nearest neighbour, so it stays binary.
    """
    keys = [image_key, label_key]
    return Compose(
        [
            LoadImaged(keys, reader="PILReader", image_only=True, ensure_channel_first=True),
            MergeMasksd(label_key),
            ScaleIntensityRanged(image_key, a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
            Resized(keys, spatial_size=spatial_size, mode=("area", "nearest")),
            EnsureTyped(keys, dtype=torch.float32),
        ]
    )
