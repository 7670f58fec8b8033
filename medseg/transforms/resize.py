"""Area-averaging resize whose inverse is bilinear: MONAI's ``Resize``/``Resized``, extended.

Shrinking an image by area averaging (``mode="area"``, PyTorch's ``adaptive_avg_pool``) avoids aliasing, and
the networks are trained on images shrunk that way. MONAI's ``Resize.inverse`` resizes back with the same mode,
and area "averaging" of an enlargement mostly repeats pixels: a prediction brought back to the input's grid
(``Invertd``) is blocky, as with nearest neighbour, and 20 times slower to compute than a bilinear one (a
256x256 map to 500x400: 13.8 ms against 0.6 ms on 2 CPU cores). :class:`AreaResize` resizes forward exactly
as ``Resize(mode="area")`` and inverts by bilinear interpolation (``align_corners=False``: pixel centres, the
same grid as area averaging).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import Resize, Resized
from monai.utils import TraceKeys

__all__ = ["AreaResize", "AreaResized"]


class AreaResize(Resize):
    """``Resize(spatial_size, mode="area")``, inverted bilinearly (see the module's docstring)."""

    def __init__(self, spatial_size: Sequence[int] | int, **kwargs: Any) -> None:
        super().__init__(spatial_size, mode="area", **kwargs)

    def inverse_transform(self, data: torch.Tensor, transform: Mapping) -> torch.Tensor:
        extra = {**transform[TraceKeys.EXTRA_INFO], "mode": "bilinear", "align_corners": False}
        return super().inverse_transform(data, {**transform, TraceKeys.EXTRA_INFO: extra})


class AreaResized(Resized):
    """Dictionary version of :class:`AreaResize`."""

    def __init__(
        self, keys: KeysCollection, spatial_size: Sequence[int] | int, size_mode: str = "all", **kwargs: Any
    ) -> None:
        super().__init__(keys, spatial_size, size_mode, mode="area", **kwargs)
        self.resizer = AreaResize(spatial_size, size_mode=size_mode, lazy=self.lazy)
