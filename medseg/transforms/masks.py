"""Ground-truth mask decoders that MONAI does not provide."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_tensor

__all__ = ["MergeMasks", "MergeMasksd"]


class MergeMasks(Transform):
    """Merge the channels of a channel-first mask into one binary channel.

    A pixel is foreground where any channel exceeds half of the mask's maximum, so masks stored as
    0/255, 0/1 or anti-aliased grey levels all binarise the same way, and the Montgomery left and
    right lung masks (loaded as two channels) become one lung mask. An all-zero mask stays zero.
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, mask: NdarrayOrTensor) -> torch.Tensor:
        mask = convert_to_tensor(mask, track_meta=get_track_meta())
        return (mask > mask.max() / 2).any(dim=0, keepdim=True).to(torch.float32)


class MergeMasksd(MapTransform):
    """Dictionary-based :class:`MergeMasks`."""

    backend = MergeMasks.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.merger = MergeMasks()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.merger(d[key])
        return d
