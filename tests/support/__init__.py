"""Helpers of medseg's tests and benchmarks (not part of the package): where the checkout and the real data are,
and independent reference code.

- :data:`REPO_ROOT` and :func:`shared_data_root`: the real data subsets beside the repository (never copied in).
- :func:`sitk_reference`: an input image (a file or a DICOM series folder) as SimpleITK reads it, the reference
  for the grid a mask is written on.
- :mod:`support.segcaps_port`: a straightforward port of the SegCaps Keras code, the reference that
  :class:`medseg.networks.SegCapsR3` is checked and benchmarked against.
- :mod:`support.dicom_mutants`: broken copies of a real DICOM series for the fuzz tests.

Tests import it as ``support`` (pytest puts ``tests/`` on the path); the benchmarks in ``scripts/`` add ``tests/``
to ``sys.path`` first.
"""

from __future__ import annotations

import os
from pathlib import Path

import SimpleITK as sitk

__all__ = ["REPO_ROOT", "shared_data_root", "sitk_reference"]

#: The root of the source checkout these tests belong to.
REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_root() -> Path:
    """``$MEDSEG_SHARED_DATA`` when set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("MEDSEG_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def sitk_reference(path: str | Path) -> sitk.Image:
    """The image at ``path`` as SimpleITK reads it: a DICOM series when ``path`` is a folder, else the file."""
    path = Path(path)
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path)))
        return reader.Execute()
    return sitk.ReadImage(str(path))
