"""2D axial slices of 3D volumes, each volume read and pre-processed once.

SegCaps trains 2D networks on the axial slices of LUNA16 scans: it converts every scan once and
samples slices from the converted array, skipping slices whose mask is empty for training and
validation and keeping them all for testing. :class:`SliceDataset` does the same on MONAI
datalists: a volume transform (e.g. :func:`medseg.transforms.luna16_transforms`) runs once per
volume, its output is cached, and each item is one slice cut from the cache (with MONAI's
``SpatialCrop`` and ``SqueezeDim``, which turn the volume's affine into the slice's in-plane (x, y)
affine), then passed through a 2D transform (e.g. :func:`medseg.transforms.segcaps_augmentation`).

MONAI's ``CacheDataset`` caches whole items and ``PatchDataset``/``GridPatchDataset`` iterate over
patches without a per-slice index (no empty-slice rule, no map-style access), hence this class.

Memory: ``cache_size=None`` keeps every volume (each is read exactly once). With a bound, the least
recently used volumes are dropped; :class:`SliceSampler` then visits the volumes one after the other
(in random order, slices shuffled within each, as SegCaps' generator), so a cache of one volume
still reads each volume once per epoch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import SpatialCrop, SqueezeDim
from torch.utils.data import Dataset, Sampler

__all__ = ["SliceDataset", "SliceSampler", "foreground_slices"]

#: Datalist keys that index a volume's slices: kept out of the slice items (their lengths differ between volumes,
#: so a batch of slices could not be collated).
_VOLUME_INDEX_KEYS = ("num_slices", "foreground_slices")


def foreground_slices(label: torch.Tensor, axis: int = -1) -> list[int]:
    """Indices along spatial ``axis`` of the slices of a channel-first ``label`` with a non-zero voxel (of one-hot
    labels, several channels with the background first: a voxel of any label)."""
    dim = axis % label.ndim
    if dim == 0:
        raise ValueError(f"axis {axis} is the channel axis of a label of shape {tuple(label.shape)}")
    foreground = label[1:] if label.shape[0] > 1 else label
    other = [d for d in range(label.ndim) if d != dim]
    return torch.nonzero(torch.as_tensor(foreground != 0).sum(dim=other)).flatten().tolist()


class SliceDataset(Dataset):
    """Map-style dataset of the 2D slices of 3D volumes, sampled from a cache of pre-processed volumes.

    Args:
        data: datalist entries (``{"image", "label", ...}``). Entries written by ``medseg prepare``
            carry ``"num_slices"`` and ``"foreground_slices"``, which spare the indexing pass;
            otherwise each volume is loaded once at construction to index its slices.
        volume_transform: deterministic transform of an entry into channel-first volumes.
        transform: 2D transform of each slice item (augmentation, type conversion), or ``None``.
        skip_empty: leave out slices whose mask is empty (training and validation in SegCaps);
            ``False`` keeps every slice (testing).
        keys: the entry keys that are volumes to slice; other keys are copied into each item.
        label_key: the key whose emptiness decides ``skip_empty``.
        axis: the spatial axis to slice along, as an index of the channel-first volume; ``-1`` is z
            for volumes read by ITK as (x, y, z), i.e. axial slices.
        cache_size: number of volumes kept; ``None``: all.

    Each item holds the 2D slices (C, x, y) under ``keys``, the entry's other keys but ``"num_slices"`` and
    ``"foreground_slices"``, and ``"slice"``, the slice index.
    """

    def __init__(
        self,
        data: Sequence[Mapping],
        volume_transform: Callable[[dict], Mapping],
        transform: Callable[[dict], Mapping] | None = None,
        skip_empty: bool = True,
        keys: Sequence[str] = ("image", "label"),
        label_key: str = "label",
        axis: int = -1,
        cache_size: int | None = None,
    ) -> None:
        if cache_size is not None and cache_size < 1:
            raise ValueError(f"SliceDataset: cache_size must be at least 1 or None, got {cache_size}")
        self.data = [dict(entry) for entry in data]
        self.volume_transform = volume_transform
        self.transform = transform
        self.skip_empty = skip_empty
        self.keys = tuple(keys)
        self.label_key = label_key
        self.axis = axis
        self.cache_size = cache_size
        self._cache: OrderedDict[int, Mapping] = OrderedDict()
        self.index: list[tuple[int, int]] = []
        for volume, entry in enumerate(self.data):
            self.index.extend((volume, k) for k in self._slices_of(volume, entry))

    def _slices_of(self, volume: int, entry: Mapping) -> list[int]:
        if self.skip_empty and "foreground_slices" in entry:
            return [int(k) for k in entry["foreground_slices"]]
        if not self.skip_empty and "num_slices" in entry:
            return list(range(int(entry["num_slices"])))
        label = self.volume(volume)[self.label_key]
        if self.skip_empty:
            return foreground_slices(label, self.axis)
        return list(range(label.shape[self.axis]))

    def volume(self, volume: int) -> Mapping:
        """The pre-processed volume ``volume`` of :attr:`data`, from the cache or loaded (and cached) now."""
        if volume in self._cache:
            self._cache.move_to_end(volume)
            return self._cache[volume]
        item = self.volume_transform(dict(self.data[volume]))
        self._cache[volume] = item
        if self.cache_size is not None and len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return item

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> Mapping:
        volume, k = self.index[index]
        cached = self.volume(volume)
        item = {key: value for key, value in cached.items() if key not in self.keys and key not in _VOLUME_INDEX_KEYS}
        for key in self.keys:
            spatial_dims = cached[key].ndim - 1
            dim = self.axis % cached[key].ndim
            roi = [slice(None)] * spatial_dims
            roi[dim - 1] = slice(k, k + 1)
            one = SpatialCrop(roi_slices=roi)(cached[key])
            item[key] = SqueezeDim(dim=dim)(one).clone()  # a copy: transforms never touch the cache
        item["slice"] = k
        return self.transform(item) if self.transform is not None else item


class SliceSampler(Sampler[int]):
    """Indices of a :class:`SliceDataset` grouped by volume: volumes in random order, slices shuffled within each.

    This is the order of SegCaps' training generator; it keeps a bounded volume cache effective.
    ``set_epoch`` changes the order from one epoch to the next, reproducibly for a ``seed``.
    """

    def __init__(self, dataset: SliceDataset, shuffle: bool = True, seed: int = 0) -> None:
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        by_volume: dict[int, list[int]] = {}
        for position, (volume, _) in enumerate(self.dataset.index):
            by_volume.setdefault(volume, []).append(position)
        rng = np.random.default_rng([self.seed, self.epoch])
        volumes = list(by_volume)
        if self.shuffle:
            rng.shuffle(volumes)
        for volume in volumes:
            positions = list(by_volume[volume])
            if self.shuffle:
                rng.shuffle(positions)
            yield from positions
