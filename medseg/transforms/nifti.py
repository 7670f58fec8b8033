"""A NIfTI volume's geometry by the NIfTI rule, as nibabel and most viewers read it.

A NIfTI header carries two voxel-to-world transforms, the qform (a rotation, spacings and an origin) and the sform (a
general affine), each with a code saying whether it is set. The NIfTI-1 standard and nibabel (``img.affine``) take
the sform when its ``sform_code`` is above 0, else the qform; ITK (5.4, which SimpleITK and MONAI's ``ITKReader``
use) takes the qform when both are set. For a file whose two transforms disagree, a mask written with ITK's reading
would land elsewhere in 3D Slicer, ITK-SNAP or nibabel than the scan it was made from. :func:`nifti_geometry` gives
nibabel's affine as ITK's spacing, origin and direction (LPS), which :class:`~medseg.transforms.VolumeReader` puts on
the image ITK reads and :meth:`medseg.inference.Geometry.of_file` on the mask's grid: the image the network sees,
its axial direction (:class:`~medseg.transforms.AxialOrientationd`) and the written mask all follow the rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from monai.config import PathLike

from .file_checks import ImageFileError

__all__ = ["NIFTI_SUFFIXES", "is_nifti", "nifti_geometry"]

#: The file name endings of NIfTI-1 and NIfTI-2 single files.
NIFTI_SUFFIXES = (".nii", ".nii.gz")

#: How far a direction matrix may be from orthonormal (ITK's images have orthonormal directions).
ORTHONORMAL_TOLERANCE = 1e-4

#: ITK's world coordinates are LPS, nibabel's RAS: the first two axes change sign.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def is_nifti(path: PathLike) -> bool:
    """Whether ``path`` names a NIfTI file (by its suffix, as ITK chooses its reader)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def nifti_geometry(path: PathLike) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray] | None:
    """The spacing, origin and direction (3x3, columns the array axes' directions) in ITK's LPS convention of a 3D
    NIfTI file's affine as nibabel reads it (sform when ``sform_code > 0``, else qform); ``None`` for a file that is
    not a 3D NIfTI, or whose header nibabel cannot read (ITK's geometry stands).

    Raises:
        ImageFileError: when the chosen transform is sheared (no spacing and orthonormal direction can carry it),
            naming both transforms and their codes.
    """
    if not is_nifti(path):
        return None
    import nibabel as nib

    try:
        image = nib.load(str(path))  # the header only
    except Exception:  # a header nibabel refuses but ITK read: ITK's geometry stands (the file checks name damage)
        return None
    if len(image.shape) != 3:
        return None
    axes = _RAS_TO_LPS @ image.affine[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    if not np.all(spacing > 0):
        return None  # a singular affine: check_volume_file names it
    direction = axes / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=ORTHONORMAL_TOLERANCE):
        header = image.header
        qform, qcode = header.get_qform(coded=True)
        sform, scode = header.get_sform(coded=True)
        raise ImageFileError(
            f"{Path(path)}: NIfTI {'sform' if scode else 'qform'} is sheared (not spacings and a rotation), which the "
            f"mask's grid cannot carry: sform (code {int(scode)}) {np.round(sform, 4).tolist() if scode else None}, "
            f"qform (code {int(qcode)}) {np.round(qform, 4).tolist() if qcode else None}"
        )
    origin = _RAS_TO_LPS @ image.affine[:3, 3]
    return tuple(float(v) for v in spacing), tuple(float(v) for v in origin), direction
