"""Synthetic datasets written in the on-disk layouts of the real ones.

Each generator draws random, learnable anatomy (shapes, sizes and positions vary from case to case) and writes
it exactly as the public dataset is laid out, so that every adapter, transform, bundle and script can run end
to end without downloading anything. All generators are deterministic for a given ``seed``; each task record
(:mod:`medseg.tasks`) names the generators of its layouts, which ``medseg synth`` runs.

No library writes such phantoms, so these modules are written from scratch on NumPy, SciPy, SimpleITK, Pillow
and pydicom: :mod:`.ct` (LUNA16 files, DICOM CT series), :mod:`.cxr` (Montgomery, Shenzhen, DICOM
radiographs), :mod:`.faces` (LFW Part Labels, HELEN), :mod:`.skin` (ISIC 2017, PH2); :mod:`.shapes` and
:mod:`.dicom` hold what they share.
"""

from .ct import LUNA16_UID_PREFIX, CTPhantom, ct_phantom, make_dicom_ct, make_luna16
from .cxr import make_cxr, make_cxr_dicom, make_shenzhen
from .faces import make_helen, make_lfw
from .skin import make_isic, make_ph2

__all__ = [
    "LUNA16_UID_PREFIX",
    "CTPhantom",
    "ct_phantom",
    "make_cxr",
    "make_cxr_dicom",
    "make_dicom_ct",
    "make_helen",
    "make_isic",
    "make_lfw",
    "make_luna16",
    "make_ph2",
    "make_shenzhen",
]
