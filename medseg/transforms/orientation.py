"""Axial slices whatever the order of a volume's array axes: MONAI's ``Orientation`` with per-image axis codes.

A 2D network on CT (SegCaps, the study's U-Net) segments a volume slice by slice along its last array axis
(:class:`medseg.data.SliceDataset`, MONAI's ``SliceInferer`` with ``spatial_dim=2``), which is the axial
(inferior-superior) axis of a scanner's usual output, but not of a legal NIfTI whose array axes are stored in another
order (``x[k, i, j]`` with the affine's columns permuted alike: the same anatomy in world space), nor of a sagittal or
coronal acquisition. :class:`AxialOrientation` permutes the array axes so that they run along the world's
left-right, anterior-posterior and inferior-superior axes in that order, keeping each axis' direction as stored: an
axial scan in the usual order (LPS from DICOM and LUNA16, LAS from ``ct_imlab``) is left exactly as it is, so models
trained before see the same slices, and any permutation of it gives the same slices, in plane as well. It extends
MONAI's ``Orientation`` by choosing the target axis codes from each image's own affine (``nibabel.io_orientation``,
the closest axis of each); its inverse (MONAI's, from the recorded original affine) puts a prediction back on the
input's own grid (``Invertd``, :class:`medseg.inference.Predictor`).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Orientation, Orientationd
from monai.utils import convert_data_type

__all__ = ["AxialOrientation", "AxialOrientationd", "axial_axcodes", "stored_orientation"]

#: The labels of the axis codes, nibabel's (negative, positive direction of each world axis): the codes are read
#: as they were made, whatever the ``space`` a tensor's metadata names.
LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


def axial_axcodes(affine: np.ndarray) -> str:
    """The axis codes (RAS labels, as MONAI's ``Orientation`` takes them) of the array axes of a 3D ``affine``
    reordered to run along the world's x, y and z axes, each in its stored direction: ``"LAS"`` for a volume whose
    axes are (A, S, L) as stored (``affine`` RAS, as MONAI's readers give it)."""
    ornt = nib.io_orientation(np.asarray(affine, dtype=np.float64))
    by_world_axis = ornt[np.argsort(ornt[:, 0])]
    return "".join(nib.orientations.ornt2axcodes(by_world_axis, labels=LABELS))


class AxialOrientation(Orientation):
    """MONAI's ``Orientation`` to the codes :func:`axial_axcodes` gives each volume: its last axis the axial one.

    Only channel-first 3D ``MetaTensor`` volumes are reoriented (their affine says how); anything else is returned
    unchanged. The inverse is MONAI's (back to the recorded original affine's codes).
    """

    def __init__(self, lazy: bool = False) -> None:
        super().__init__(axcodes="RAS", labels=LABELS, lazy=lazy)  # the codes: each volume's own

    def __call__(self, data_array: torch.Tensor, lazy: bool | None = None) -> torch.Tensor:
        if not isinstance(data_array, MetaTensor) or data_array.ndim != 4:
            return data_array
        affine, *_ = convert_data_type(data_array.peek_pending_affine(), np.ndarray)
        self.axcodes = axial_axcodes(affine)
        return super().__call__(data_array, lazy)


class AxialOrientationd(Orientationd):
    """Dictionary-based :class:`AxialOrientation` (MONAI's ``Orientationd`` with its array transform)."""

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False, lazy: bool = False) -> None:
        super().__init__(keys, axcodes="RAS", labels=LABELS, allow_missing_keys=allow_missing_keys, lazy=lazy)
        self.ornt_transform = AxialOrientation(lazy=lazy)


def stored_orientation(image: torch.Tensor) -> torch.Tensor:
    """A volume read by medseg's CT path back in the axis order of its file (the codes of the affine it was read
    with, ``meta["original_affine"]``), e.g. to draw it beside a mask written on the input's own grid; a tensor
    without that record is returned unchanged."""
    if not isinstance(image, MetaTensor) or image.ndim != 4 or "original_affine" not in image.meta:
        return image
    codes = "".join(nib.aff2axcodes(np.asarray(image.meta["original_affine"], dtype=np.float64), labels=LABELS))
    reorient = Orientation(axcodes=codes, labels=LABELS)
    with reorient.trace_transform(False):
        return reorient(image)
