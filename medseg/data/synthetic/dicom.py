"""The DICOM writer shared by the synthetic CT series and radiographs (pydicom).

No library writes a minimal valid image file from a pixel array, so this module assembles one: the file meta
(explicit VR little endian), the SOP class and instance, the caller's attributes (patient, study, series,
geometry) and an unsigned 16-bit monochrome pixel module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["uid", "write_dicom"]


def uid(prefix: str, seed: int, *parts: object) -> str:
    """A DICOM UID under ``prefix``, deterministic for ``seed`` and ``parts``."""
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=prefix, entropy_srcs=[str(seed), *map(str, parts)]))


def write_dicom(
    path: Path, pixels: np.ndarray, sop_class_uid: str, sop_instance_uid: str, bits_stored: int, **attributes: Any
) -> Path:
    """Write ``pixels`` (2D, unsigned, stored in 16 bits) as a MONOCHROME2 DICOM file with ``attributes``.

    ``attributes`` are DICOM keywords (``PatientID``, ``ImagePositionPatient``, ...) and their values.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class_uid, sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class_uid, sop_instance_uid
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
