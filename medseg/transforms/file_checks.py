"""Checks that a file is a whole image before (or after) a reader reads it: what MONAI's and ITK's readers do not
say or do not see.

- :func:`check_image_file` says what is wrong with a 2D image (or DICOM) file a reader failed on: ``"empty file"``,
  ``"truncated PNG image"``, ``"not an image: ..."``, or :class:`medseg.dicom.DicomError` for a broken DICOM file;
- :func:`check_volume_file` finds a volume file cut short, which ITK reads without an error, zero-filling what is
  missing: a gzip stream (``.nii.gz``, gzip NRRD) that ends before its end marker, a NIfTI or raw NRRD file that
  holds fewer bytes than its header announces; and a NIfTI header whose affine is singular, or floating-point
  voxels that are NaN or infinite (ITK reads NaN as 0).

Both parse the bytes of the formats themselves (gzip, the NRRD and NIfTI headers); the readers in
:mod:`medseg.transforms.io` call them.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
from monai.config import PathLike
from PIL import Image, UnidentifiedImageError

from medseg.dicom import check_dicom_file

__all__ = ["ImageFileError", "check_image_file", "check_volume_file"]

#: The formats named when a file is none of them.
_KNOWN_FORMATS = "PNG, JPEG, BMP, PNM, TIFF or DICOM"


class ImageFileError(ValueError):
    """A file that is not a readable image; the message names it and says why (empty, truncated, not an image)."""


def check_image_file(path: PathLike) -> None:
    """Raise an error that says what is wrong with an image file a reader failed on; return if nothing is found.

    An empty file raises :class:`ImageFileError` ``"empty file"``; a DICOM file (``DICM`` marker) is checked by
    :func:`medseg.dicom.check_dicom_file` (:class:`~medseg.dicom.DicomError`); a file Pillow recognises but cannot
    decode, or whose header it cannot parse, is a ``"truncated"`` (Pillow's own diagnosis) or ``"corrupt"`` image
    (of its format, once the header is read); a file with an
    image suffix that neither Pillow nor pydicom recognises is ``"not an image"``. Folders (DICOM series) are
    :class:`VolumeReader`'s, and volume formats Pillow does not know are left to ITK's message.
    """
    path = Path(path)
    if path.is_dir():
        return
    if not path.exists():
        raise ImageFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageFileError(f"{path}: empty file")
    with open(path, "rb") as stream:
        head = stream.read(132)
    if head[128:132] == b"DICM":
        check_dicom_file(path)
        return
    try:
        image = Image.open(path)
    except UnidentifiedImageError as error:
        if path.suffix.lower() in Image.registered_extensions() or path.suffix.lower() == ".dcm":
            raise ImageFileError(
                f"{path}: not an image: no {_KNOWN_FORMATS} signature (it begins with {head[:12]!r})"
            ) from error
        return
    except Exception as error:  # a signature Pillow knows, then a header cut short or broken
        raise ImageFileError(f"{path}: {_state(error)} image header ({error})") from error
    with image:
        try:
            image.load()
        except Exception as error:  # Pillow's decoders fail with OSError, SyntaxError, ValueError, EOFError
            raise ImageFileError(f"{path}: {_state(error)} {image.format} image ({error})") from error


#: Bytes read at a time when a compressed file is checked to its end.
_CHUNK = 1 << 22


def _gzip_length(path: Path, offset: int = 0) -> int:
    """The uncompressed length of the gzip stream of ``path`` from byte ``offset`` on, read to its end (the
    stream's end marker and CRC checked)."""
    length = 0
    try:
        with open(path, "rb") as raw:
            raw.seek(offset)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                while chunk := stream.read(_CHUNK):
                    length += len(chunk)
    except EOFError:
        raise ImageFileError(f"{path}: truncated gzip stream (the file ends before its compressed data do)") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as error:
        raise ImageFileError(f"{path}: corrupt gzip stream ({error})") from None
    return length


#: Bytes per value of the NRRD types.
_NRRD_TYPES = {
    "char": 1, "signed char": 1, "int8": 1, "int8_t": 1, "uchar": 1, "unsigned char": 1, "uint8": 1, "uint8_t": 1,
    "short": 2, "short int": 2, "signed short": 2, "signed short int": 2, "int16": 2, "int16_t": 2, "ushort": 2,
    "unsigned short": 2, "unsigned short int": 2, "uint16": 2, "uint16_t": 2, "int": 4, "signed int": 4, "int32": 4,
    "int32_t": 4, "uint": 4, "unsigned int": 4, "uint32": 4, "uint32_t": 4, "longlong": 8, "long long": 8,
    "long long int": 8, "signed long long": 8, "signed long long int": 8, "int64": 8, "int64_t": 8,
    "ulonglong": 8, "unsigned long long": 8, "unsigned long long int": 8, "uint64": 8, "uint64_t": 8,
    "float": 4, "double": 8,
}  # fmt: skip


def _check_nrrd(path: Path) -> None:
    """A NRRD file with its data attached (raw or gzip) holds the bytes its header announces."""
    with open(path, "rb") as stream:
        head = stream.read(1 << 16)
    end = head.find(b"\n\n")
    if not head.startswith(b"NRRD") or end < 0:
        return  # not a NRRD header this check reads: left to ITK
    fields = {}
    for line in head[:end].decode("latin-1").splitlines()[1:]:
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip().lstrip("=").strip()
    if "data file" in fields or "datafile" in fields:
        return  # detached data (a .nhdr): ITK checks the file it names
    try:
        announced = (
            int(np.prod([int(s) for s in fields["sizes"].split()], dtype=np.int64)) * _NRRD_TYPES[fields["type"]]
        )
    except (KeyError, ValueError):
        return
    encoding = fields.get("encoding", "raw")
    if encoding in ("gzip", "gz"):
        length = _gzip_length(path, offset=end + 2)
    elif encoding == "raw":
        length = path.stat().st_size - (end + 2)
    else:
        return
    if length < announced:
        raise ImageFileError(
            f"{path}: truncated NRRD file: its header announces {announced} bytes of data, it holds {length}"
        )


def _raw_nifti_header(path: Path, kind: type):
    """The NIfTI header of ``path`` as written, without nibabel's fixes."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as stream:
        return kind.from_fileobj(stream, check=False)


def _nifti_length(path: Path) -> int | None:
    """The bytes a NIfTI-1/2 header announces (offset of the data plus their size), or ``None`` when unreadable;
    raises :class:`ImageFileError` for a header whose voxel-to-world affine is singular (ITK's message then names a
    line of its source, not the problem)."""
    import nibabel

    try:
        image = nibabel.load(str(path))
    except Exception:  # left to ITK's own message
        return None
    header = image.header
    raw = _raw_nifti_header(path, type(header))  # nibabel's loader replaces a zero spacing by 1; ITK refuses it
    spatial = min(3, len(header.get_data_shape()))  # a 2D image has no third spacing to check
    zooms = [float(zoom) for zoom in raw["pixdim"][1 : 1 + spatial]]
    codes = (int(raw["qform_code"]), int(raw["sform_code"]))
    axes = (raw.get_sform() if codes[1] > 0 else raw.get_qform())[:spatial, :spatial] if any(codes) else np.diag(zooms)
    if any(not abs(zoom) > 0 for zoom in zooms) or abs(float(np.linalg.det(axes))) < 1e-12:
        raise ImageFileError(
            f"{path}: singular NIfTI affine (voxel spacing {zooms}, affine "
            f"{np.round(axes, 4).tolist()}): no voxel grid to put a mask on"
        )
    if np.issubdtype(header.get_data_dtype(), np.floating):  # ITK reads NaN in a NIfTI file as 0, silently
        values = np.asanyarray(image.dataobj)
        bad = int(values.size - np.isfinite(values).sum())
        if bad:
            raise ImageFileError(f"{path}: {bad} voxel(s) NaN or infinite of {values.size}; the image is refused")
    # a single-file NIfTI's data follow the header and its 4-byte extension flag; writers such as ITK leave
    # vox_offset 0, which readers take as that minimum
    offset = max(int(header.get_data_offset()), int(header["sizeof_hdr"]) + 4)
    return offset + int(np.prod(header.get_data_shape(), dtype=np.int64)) * header.get_data_dtype().itemsize


def check_volume_file(path: PathLike) -> None:
    """Raise :class:`ImageFileError` when a volume file is cut short: a gzip stream that ends before its end marker,
    or a NIfTI file holding fewer bytes than its header announces (ITK reads either without an error, filling what
    is missing with zeros); a NIfTI file whose affine is singular, or whose floating-point voxels include NaN or
    infinite values (ITK reads NaN as 0). A compressed file is read to its end; the voxels of a floating-point
    NIfTI file are read once more."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".nrrd"):
        _check_nrrd(path)
        return
    length = _gzip_length(path) if name.endswith(".gz") else path.stat().st_size
    if name.endswith((".nii", ".nii.gz")):
        announced = _nifti_length(path)
        if announced is not None and length < announced:
            raise ImageFileError(
                f"{path}: truncated NIfTI file: its header announces {announced} bytes, it holds {length}"
            )


def _state(error: Exception) -> str:
    """Pillow's diagnosis in a word: ``"truncated"`` when it says so, else ``"corrupt"``."""
    return "truncated" if "truncated" in str(error).lower() else "corrupt"
