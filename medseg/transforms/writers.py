"""Saving masks with MONAI: writers that never leave a partial file, and the mask's metadata made writable.

MONAI's writers write the target file in place, so an interrupted save leaves a truncated mask;
:class:`AtomicITKWriter` and :class:`AtomicPILWriter` write through :func:`medseg.files.atomic_path` (a temporary
name with the same extension, then a rename) and are otherwise MONAI's: ITK for NIfTI/NRRD/MHA with the image's
geometry, Pillow for PNG (``SaveImaged(..., writer=AtomicITKWriter)``).

A prediction inherits its image's metadata (``Invertd``); for an RGB photo that includes MONAI's
``original_channel_dim = -1`` (channel-last on disk), with which ``ITKWriter`` cannot write a one-channel mask.
:class:`MaskMetad` marks the mask as having no channel axis on disk.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection, PathLike
from monai.data import ITKWriter, MetaTensor, PILWriter
from monai.transforms import MapTransform

from medseg.files import atomic_path

from .io import check_volume_file

__all__ = ["AtomicITKWriter", "AtomicPILWriter", "MaskMetad"]


class AtomicITKWriter(ITKWriter):
    """``monai.data.ITKWriter`` writing atomically, the file checked complete before it takes its name (ITK reports
    a short write on a full disk without raising)."""

    def write(self, filename: PathLike, verbose: bool = False, **kwargs) -> None:
        with atomic_path(filename, verify=check_volume_file) as temporary:
            super().write(temporary, verbose=verbose, **kwargs)


class AtomicPILWriter(PILWriter):
    """``monai.data.PILWriter`` writing atomically."""

    def write(self, filename: PathLike, verbose: bool = False, **kwargs) -> None:
        with atomic_path(filename) as temporary:
            super().write(temporary, verbose=verbose, **kwargs)


class MaskMetad(MapTransform):
    """Set ``original_channel_dim`` of the masks under ``keys`` to ``"no_channel"``, so that writers accept them."""

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            if isinstance(d[key], MetaTensor):
                d[key].meta["original_channel_dim"] = "no_channel"
        return d
