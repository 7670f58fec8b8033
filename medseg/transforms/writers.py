"""MONAI image writers that never leave a partial file: ``SaveImage(d)(writer=AtomicITKWriter)``.

MONAI's writers write the target file in place, so an interrupted save leaves a truncated mask; these subclasses
write through :func:`medseg.files.atomic_path` (a temporary name with the same extension, then a rename) and are
otherwise MONAI's: ITK for NIfTI/NRRD/MHA with the image's geometry, Pillow for PNG.
"""

from __future__ import annotations

from monai.config import PathLike
from monai.data import ITKWriter, PILWriter

from medseg.files import atomic_path

__all__ = ["AtomicITKWriter", "AtomicPILWriter"]


class AtomicITKWriter(ITKWriter):
    """``monai.data.ITKWriter`` writing atomically."""

    def write(self, filename: PathLike, verbose: bool = False, **kwargs) -> None:
        with atomic_path(filename) as temporary:
            super().write(temporary, verbose=verbose, **kwargs)


class AtomicPILWriter(PILWriter):
    """``monai.data.PILWriter`` writing atomically."""

    def write(self, filename: PathLike, verbose: bool = False, **kwargs) -> None:
        with atomic_path(filename) as temporary:
            super().write(temporary, verbose=verbose, **kwargs)
