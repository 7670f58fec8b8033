"""Mutants of a real DICOM series, for fuzzing the series check and ``medseg prepare`` (``tests/test_dicom_fuzz.py``).

:func:`mutate_series` copies a series folder and breaks it in one way, drawn from :data:`MUTATIONS`: a header
element deleted, an element given a wrong value representation, the file cut short, wrong Rows, Columns or Bits
Allocated, a transfer syntax that lies about the encoding, a slice of another series (or a foreign DICOM file, or
a duplicated slice), a missing slice, a slice moved off its place. It returns a :class:`Mutant` saying what was
done, which file names a correct error message may name, and whether a reader must refuse the series. The
source files are only read; mutated files are written new.
"""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomFileLike
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

__all__ = ["MUTATIONS", "Mutant", "claim_transfer_syntax", "mutate_series"]

#: Elements without which a slice cannot be placed or decoded: deleting one must fail.
REQUIRED = (
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "BitsAllocated",
    "SamplesPerPixel",
    "PixelRepresentation",
    "PixelData",
)
#: Elements a reader may do without.
OPTIONAL = (
    "InstanceNumber",
    "SliceThickness",
    "RescaleIntercept",
    "RescaleSlope",
    "PhotometricInterpretation",
    "BitsStored",
    "HighBit",
    "StudyInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "Modality",
    "ImageType",
)
#: Value representations with a 2-byte length in explicit VR, which can replace one another in place.
SHORT_VRS = ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM")
SHORT_VRS += ("UI", "UL", "US")
#: Values that do not describe the stored pixels (64 x 64, 16 bits).
WRONG_VALUES = {
    "Rows": (0, 1, 32, 63, 65, 128, 65535),
    "Columns": (1, 32, 63, 65, 128),
    "BitsAllocated": (0, 1, 8, 12, 32),
}
#: Transfer syntaxes a file may falsely claim (the data set stays implicit VR little endian).
LIES = (
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEG2000Lossless,
    RLELossless,
    "1.2.3.4.5",
)


@dataclass(frozen=True)
class Mutant:
    """One broken copy of a series.

    Attributes:
        kind: the mutation, a key of :data:`MUTATIONS`.
        detail: what was done, e.g. ``"IMG0040.dcm: Rows 64 -> 63"``.
        names: file (or folder) names of which a correct error message names at least one.
        must_fail: whether a reader must refuse the series (``False``: it may also read it correctly).
    """

    kind: str
    detail: str
    names: tuple[str, ...]
    must_fail: bool


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` as a new file at ``path`` (never through the copied file, which may be read-only)."""
    path.unlink()
    path.write_bytes(data)


def _save(ds: pydicom.Dataset, path: Path, **kwargs) -> None:
    buffer = io.BytesIO()
    ds.save_as(buffer, **kwargs)
    _replace(path, buffer.getvalue())


def _pixel_offset(path: Path) -> int:
    """Byte offset of the Pixel Data element's value in a file whose last element it is."""
    return path.stat().st_size - len(pydicom.dcmread(path).PixelData)


def _delete_element(files: list[Path], folder: Path, rng: random.Random) -> Mutant:
    path = rng.choice(files)
    keyword = rng.choice(REQUIRED + OPTIONAL)
    ds = pydicom.dcmread(path)
    del ds[keyword]
    _save(ds, path)
    return Mutant("delete_element", f"{path.name}: {keyword} deleted", (path.name,), keyword in REQUIRED)


def _wrong_vr(files: list[Path], folder: Path, rng: random.Random) -> Mutant:
    path = rng.choice(files)
    ds = pydicom.dcmread(path)
    candidates = [e for e in ds if e.VR in SHORT_VRS and e.tag.group != 0x0002]
    important = [e for e in candidates if e.keyword in REQUIRED + OPTIONAL]
    element = rng.choice(important if rng.random() < 0.75 else candidates)  # mostly the elements a reader uses
    vr = rng.choice([v for v in SHORT_VRS if v != element.VR])
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True)
    data = bytearray(buffer.getvalue())
    header = element.tag.group.to_bytes(2, "little") + element.tag.element.to_bytes(2, "little")
    at = data.find(header + element.VR.encode(), 132 + 4)
    data[at + 4 : at + 6] = vr.encode()
    _replace(path, bytes(data))
    return Mutant("wrong_vr", f"{path.name}: {element.keyword} {element.VR} -> {vr}", (path.name,), False)


def _truncate(files: list[Path], folder: Path, rng: random.Random) -> Mutant:
    path = rng.choice(files)
    data = path.read_bytes()
    pixels = _pixel_offset(path)
    cut = rng.randrange(pixels, len(data)) if rng.random() < 0.5 else rng.randrange(0, pixels)
    _replace(path, data[:cut])
    return Mutant("truncate", f"{path.name}: cut at byte {cut} of {len(data)}", (path.name,), True)


def _wrong_format(files: list[Path], folder: Path, rng: random.Random) -> Mutant:
    path = rng.choice(files)
    keyword, values = rng.choice(sorted(WRONG_VALUES.items()))
    ds = pydicom.dcmread(path)
    old, new = ds[keyword].value, rng.choice(values)
    ds[keyword].value = new
    _save(ds, path)
    return Mutant("wrong_format", f"{path.name}: {keyword} {old} -> {new}", (path.name,), True)


def claim_transfer_syntax(path: Path, uid: str) -> None:
    """Rewrite the file meta information of ``path`` to name transfer syntax ``uid``, the data set unchanged."""
    data = path.read_bytes()
    meta = read_file_meta_info(path)
    end = 132 + 12 + int(meta.FileMetaInformationGroupLength)  # preamble, DICM, group length element, group
    meta.TransferSyntaxUID = uid
    buffer = io.BytesIO()
    buffer.write(data[:132])
    write_file_meta_info(DicomFileLike(buffer), meta, enforce_standard=True)
    _replace(path, buffer.getvalue() + data[end:])


def _lying_transfer_syntax(files: list[Path], folder: Path, rng: random.Random) -> Mutant:
    path = rng.choice(files)
    lie = rng.choice(LIES)
    claim_transfer_syntax(path, lie)
    return Mutant("lying_transfer_syntax", f"{path.name}: claims {UID(lie).name or lie}", (path.name,), False)


def _mixed_series(files: list[Path], folder: Path, rng: random.Random) -> Mutant:
    path = rng.choice(files)
    way = rng.choice(("other_uid", "foreign_file", "duplicate"))
    if way == "other_uid":
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = generate_uid()
        _save(ds, path)
        return Mutant("mixed_series", f"{path.name}: another SeriesInstanceUID", (path.name,), True)
    if way == "foreign_file":
        foreign = folder / "IMG9999.dcm"
        shutil.copyfile(get_testdata_file("CT_small.dcm"), foreign)
        return Mutant("mixed_series", "IMG9999.dcm: pydicom's CT_small.dcm added", (foreign.name,), True)
    copy = folder / f"{path.stem}b{path.suffix}"
    shutil.copyfile(path, copy)
    return Mutant("mixed_series", f"{copy.name}: a copy of {path.name}", (path.name, copy.name), True)


def _missing_slice(files: list[Path], folder: Path, rng: random.Random) -> Mutant:
    index = rng.randrange(len(files))
    files[index].unlink()
    if 0 < index < len(files) - 1:  # a gap between its neighbours
        names = (files[index - 1].name, files[index + 1].name)
    else:  # an end slice: the series is whole, one slice shorter than its mask
        names = (folder.name,)
    return Mutant("missing_slice", f"{files[index].name} deleted", names, True)


def _moved_slice(files: list[Path], folder: Path, rng: random.Random) -> Mutant:
    index = rng.randrange(1, len(files) - 1)
    path = files[index]
    ds = pydicom.dcmread(path)
    first, second = (float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in files[:2])
    shift = rng.choice((-1, 1)) * rng.uniform(0.05, 0.45) * abs(second - first)
    position = [float(v) for v in ds.ImagePositionPatient]
    position[2] += shift
    ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
    _save(ds, path)
    names = (files[index - 1].name, path.name, files[index + 1].name)
    return Mutant("moved_slice", f"{path.name}: moved {shift:+.2f} mm along z", names, True)


#: Mutation name -> ``mutation(files, folder, rng) -> Mutant`` on a copied series.
MUTATIONS: dict[str, Callable[[list[Path], Path, random.Random], Mutant]] = {
    "delete_element": _delete_element,
    "wrong_vr": _wrong_vr,
    "truncate": _truncate,
    "wrong_format": _wrong_format,
    "lying_transfer_syntax": _lying_transfer_syntax,
    "mixed_series": _mixed_series,
    "missing_slice": _missing_slice,
    "moved_slice": _moved_slice,
}


def mutate_series(source: Path, target: Path, rng: random.Random, kind: str | None = None) -> Mutant:
    """Copy the series folder ``source`` to ``target`` (which must not exist) and apply one mutation.

    Args:
        source: a folder holding one valid DICOM series (only read).
        target: where the mutant goes.
        rng: draws the mutation (when ``kind`` is ``None``), the file and the details.
        kind: a key of :data:`MUTATIONS`.
    """
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    files = sorted(p for p in target.iterdir() if p.is_file())
    kind = kind or rng.choice(sorted(MUTATIONS))
    return MUTATIONS[kind](files, target, rng)
