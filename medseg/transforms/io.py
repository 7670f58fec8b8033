"""Image loading with explicitly chosen MONAI readers.

MONAI's ``LoadImage`` always instantiates its default reader list, whose optional nvImageCodec DICOM
reader warns (twice) on machines without that library, even when the caller names the readers.
:func:`load_imaged` builds a ``LoadImaged`` with the given readers, silencing only that notice.
Readers named by the caller are tried last-to-first, so ``(PILReader(), PydicomReader())`` reads
DICOM files with pydicom, which rejects any other file at once (no ``DICM`` preamble), and PNG/JPEG
with Pillow (which, tried first, would warn about a DICOM file's "EXIF data" before failing).

Axis convention: ``PILReader`` (``reverse_indexing=True``), ``PydicomReader`` (``swap_ij=True``) and
``ITKReader`` (``reverse_indexing=True``) all return spatial axes as (x, y[, z]), i.e. the transpose
of the (row, column) arrays of Pillow, pydicom and SimpleITK, so images and masks read by different
readers stay aligned.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
from monai.config import KeysCollection
from monai.data import ImageReader, ITKReader, PILReader, PydicomReader
from monai.transforms import LoadImaged

__all__ = ["RadiographReader", "image_readers_2d", "load_imaged", "mask_reader_2d", "volume_reader"]


class RadiographReader(PydicomReader):
    """MONAI's ``PydicomReader``, with ``MONOCHROME1`` images inverted to ``MONOCHROME2`` grey levels.

    A ``MONOCHROME1`` DICOM (common for computed radiography) shows its lowest value as white;
    MONAI reads the stored values as they are, so lungs would come out bright. This reader returns
    ``min + max - x`` for such files (the same range, dark lungs), and the array unchanged otherwise.
    """

    def get_data(self, data) -> tuple[np.ndarray, dict]:
        array, meta = super().get_data(data)
        datasets = data if isinstance(data, (list, tuple)) else [data]
        if any(getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1" for ds in datasets):
            array = array.max() + array.min() - array
        return array, meta


def image_readers_2d() -> tuple[ImageReader, ...]:
    """Readers for 2D images: pydicom (single-frame DICOM, ``MONOCHROME1`` inverted), then Pillow (PNG, JPEG, PPM)."""
    return (PILReader(), RadiographReader())


def mask_reader_2d() -> ImageReader:
    """Reader for 2D masks and label images (PNG, PPM): Pillow."""
    return PILReader()


def volume_reader() -> ImageReader:
    """Reader for CT volumes (NIfTI, NRRD, MHA/MHD) and DICOM series folders: ITK, as SegCaps read LUNA16."""
    return ITKReader()


def load_imaged(keys: KeysCollection, reader: ImageReader | Sequence[ImageReader], **kwargs) -> LoadImaged:
    """``LoadImaged(keys, reader, image_only=True, ensure_channel_first=True, **kwargs)``, built quietly.

    Only the construction is quiet: read errors still raise, naming the file.
    """
    kwargs = {"image_only": True, "ensure_channel_first": True, **kwargs}
    plugin_logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = plugin_logger.level
    plugin_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")
            return LoadImaged(keys, reader=reader, **kwargs)
    finally:
        plugin_logger.setLevel(level)
