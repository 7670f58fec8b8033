"""The neighbouring axial slices of a volume as channels: the "2.5D" input of a 2D network.

A 2D network that segments a volume slice by slice sees no slice but its own. Where a volume's slices are thick
(5 mm in the ``ct_imlab`` scans), the lung's apex and base fill part of a slab: its mask (resampled by the source)
keeps only the slabs the lung fills at least half of, which one slice cannot tell. Given its ``context``
neighbours on each side as channels, ``(1, x, y, z)`` becomes ``(2 * context + 1, x, y, z)``: channel
``context + k`` of slice ``z`` is slice ``z + k``, the first and last slices repeated beyond the volume's ends.
Every 2D slice cut afterwards (:class:`medseg.data.SliceDataset` in training, MONAI's ``SliceInferer`` in
inference) then carries its neighbours, with the volume's affine and metadata kept.

MONAI has no such transform (its ``SliceInferer`` and patch datasets cut single slices), hence this one.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

__all__ = ["AdjacentSlices", "AdjacentSlicesd"]


class AdjacentSlices(Transform):
    """A one-channel volume ``(1, x, y, z)`` to ``(2 * context + 1, x, y, z)``: each axial slice with its
    ``context`` neighbours on each side as channels (see the module docstring); ``context=0`` returns the input."""

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, context: int = 1) -> None:
        if isinstance(context, bool) or not isinstance(context, int) or context < 0:
            raise ValueError(f"AdjacentSlices: context must be a whole number of slices, 0 or more, got {context!r}")
        self.context = context

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        if self.context == 0:
            return img
        if img.ndim != 4 or img.shape[0] != 1:
            raise ValueError(
                f"AdjacentSlices: expected a channel-first volume of one channel (1, x, y, z), got shape "
                f"{tuple(img.shape)}"
            )
        volume = convert_to_tensor(img, track_meta=False)[0]
        depth = volume.shape[-1]
        index = torch.arange(depth, device=volume.device)
        offsets = range(-self.context, self.context + 1)
        stacked = torch.stack([volume[..., (index + offset).clamp(0, depth - 1)] for offset in offsets])
        return convert_to_dst_type(stacked, img)[0]


class AdjacentSlicesd(MapTransform):
    """Dictionary-based :class:`AdjacentSlices`."""

    backend = AdjacentSlices.backend

    def __init__(self, keys: KeysCollection, context: int = 1, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slices = AdjacentSlices(context)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.slices(d[key])
        return d
