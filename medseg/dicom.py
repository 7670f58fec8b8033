"""DICOM series folders, checked before a volume is read from them: one series, one geometry, every slice there.

ITK (through MONAI's ``ITKReader``) reads a folder as a series by grouping the files GDCM can parse: a file it
cannot parse is left out without an error, so a truncated slice gives a volume one slice short, and an uneven
gap only a console warning. :func:`check_dicom_series` reads every file with pydicom first and raises a
:class:`DicomError` naming the file (or, for the series as a whole, the folder and the files concerned)
and the problem:

- every file of the folder (hidden files and ``DICOMDIR`` aside) is a DICOM Part 10 file that pydicom parses,
  complete (no element cut short by the end of the file), with one frame whose pixel data has the size its
  header announces (uncompressed transfer syntaxes) or is a well-formed encapsulated frame (compressed ones);
- one Series Instance UID (otherwise the series found are named, with their files); a UID that is present but empty
  (as anonymisers leave it) or absent is a value like any other: files that all have none are one series, as
  SimpleITK and GDCM read them, when they agree in everything below;
- one Rows, Columns, Pixel Spacing, Image Orientation (Patient), Bits Allocated, Samples per Pixel, Pixel
  Representation and Frame of Reference UID;
- slice positions (Image Position (Patient) along the slice normal, the cross product of the orientation's row
  and column directions) all different and evenly spaced: every gap within ``spacing_tolerance`` (relative) of
  the median gap; a gap of about k spacings is reported as k - 1 missing slices;
- slices stacked along their normal: a position that drifts in-plane from one slice to the next (a gantry-tilted
  or sheared acquisition) would put a volume read on a rectilinear grid elsewhere than the scan, so it is refused;
- a ``RescaleSlope`` that is not 0 (with 0 every pixel would be the intercept).

It returns a :class:`SeriesInfo` with the files in slice order, which :class:`medseg.transforms.VolumeReader`
gives ITK as they are, so the volume has exactly the slices checked. A slice missing at either end of a series
leaves no gap and cannot be detected from the files.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID, RLELossless

__all__ = ["DicomError", "SeriesInfo", "check_dicom_file", "check_dicom_series", "is_dicom_file", "series_files"]

_UNDEFINED_LENGTH = 0xFFFFFFFF
#: Transfer syntaxes whose frames end with the JPEG end-of-image marker (JPEG, JPEG-LS, JPEG 2000, HTJ2K).
_JPEG_FAMILY = {f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81, 90, 91, 92, 93, 201, 202, 203)}
#: Relative tolerance of pixel spacings and orientation cosines shared by the slices of a series.
_GEOMETRY_TOLERANCE = 1e-4


class DicomError(ValueError):
    """A DICOM file or series folder that cannot be read as an image; the message names the file (or folder) and why."""


@dataclass(frozen=True)
class SeriesInfo:
    """A checked DICOM series.

    Attributes:
        folder: the series folder.
        files: the slice files in slice order (ascending along the slice normal), as ITK reads them.
        series_uid, study_uid, frame_of_reference_uid: the series' UIDs (``""`` for a series UID the files leave
            empty, ``None`` where they have no study or frame of reference UID).
        size: ``(columns, rows, slices)``, i.e. (x, y, z) as medseg's readers return the volume.
        spacing: ``(column spacing, row spacing, slice spacing)`` in mm; the slice spacing is the median gap
            between slice positions (1.0 for a single slice, as ITK).
        origin: Image Position (Patient) of the first slice, in mm.
        orientation: Image Orientation (Patient): the row then the column direction cosines.
        positions: the slice positions along the normal, in mm, ascending.
    """

    folder: Path
    files: tuple[Path, ...]
    series_uid: str
    study_uid: str | None
    frame_of_reference_uid: str | None
    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    orientation: tuple[float, ...]
    positions: tuple[float, ...]


@dataclass(frozen=True)
class _Slice:
    """What the series check needs from one file's header."""

    path: Path
    series_uid: str
    study_uid: str | None
    frame_of_reference_uid: str | None
    rows: int
    columns: int
    pixel_spacing: tuple[float, float]
    orientation: tuple[float, ...]
    position: tuple[float, float, float]
    bits_allocated: int
    samples_per_pixel: int
    pixel_representation: int


def is_dicom_file(path: str | Path) -> bool:
    """Whether ``path`` is a DICOM file: a ``.dcm`` name, or the ``DICM`` marker after the 128-byte preamble."""
    path = Path(path)
    try:
        return path.suffix.lower() == ".dcm" or (path.is_file() and pydicom.misc.is_dicom(str(path)))
    except OSError:
        return False


def series_files(folder: str | Path) -> list[Path]:
    """The files of a series folder, sorted by name: every entry but sub-folders, hidden files and ``DICOMDIR``."""
    folder = Path(folder)
    return sorted(
        p for p in folder.iterdir() if not p.is_dir() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR"
    )


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a corrupt value may be long)."""
    text = repr(list(value) if isinstance(value, MultiValue) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _check_complete(path: Path, ds: pydicom.Dataset) -> None:
    """pydicom stops quietly at the end of a file: an element shorter than its announced length is a truncation,
    and a data set without its last element, the pixel data, was cut (or is no image)."""
    size = path.stat().st_size
    for tag in ds.keys():
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.length != _UNDEFINED_LENGTH and raw.value is not None:
            if len(raw.value) < raw.length:
                keyword = keyword_for_tag(tag)
                syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
                # an unknown tag announcing more than the whole file: bytes read with the wrong encoding
                misread = not keyword and raw.length > size
                hint = f" (an unknown tag longer than the file: not encoded as {syntax.name or syntax}?)"
                raise DicomError(
                    f"{path}: truncated file: {keyword or 'element'} {tag} announces {raw.length} bytes, the file "
                    f"holds {len(raw.value)}" + (hint if misread else "")
                )
    if "PixelData" not in ds:
        last = keyword_for_tag(next(reversed(ds.keys()))) or "its last element"
        raise DicomError(f"{path}: no PixelData: the data set ends after {last} (a truncated file, or no image)")


def _values(ds: pydicom.Dataset, path: Path, keyword: str, count: int, convert: Callable[[Any], Any]) -> tuple:
    """``count`` values of ``keyword`` converted by ``convert``; missing, miscounted or invalid values raise."""
    try:
        element = ds[keyword] if keyword in ds else None
        value = None if element is None else element.value
    except Exception as error:  # pydicom converts a raw value on first access and may fail on corrupt bytes
        raise DicomError(f"{path}: invalid {keyword}: {_first_line(error)}") from error
    if value is None or value == "" or (isinstance(value, Sequence) and not isinstance(value, str) and not value):
        raise DicomError(f"{path}: no {keyword}")
    values = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    if len(values) != count:
        raise DicomError(f"{path}: {keyword} has {len(values)} value(s), expected {count}: {_shown(value)}")
    try:
        converted = tuple(convert(v) for v in values)
    except (TypeError, ValueError, OverflowError) as error:
        raise DicomError(f"{path}: invalid {keyword} {_shown(value)}: {_first_line(error)}") from error
    if any(isinstance(v, float) and not math.isfinite(v) for v in converted):
        raise DicomError(f"{path}: non-finite {keyword} {_shown(value)}")
    return converted


def _uid(ds: pydicom.Dataset, path: Path, keyword: str, required: bool = True) -> str | None:
    """The UID, ``""`` for a required one that is empty or absent (an anonymised file), ``None`` for an optional one."""
    if keyword not in ds or not str(ds.get(keyword, "") or "").strip():
        return "" if required else None
    (uid,) = _values(ds, path, keyword, 1, lambda v: str(v).strip())
    return uid


def _positive(kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        number = kind(value)
        if number <= 0:
            raise ValueError(f"must be positive, got {number}")
        return number

    return convert


def _check_orientation(path: Path, orientation: tuple[float, ...]) -> None:
    row, column = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    unit = abs(np.linalg.norm(row) - 1) < 1e-3 and abs(np.linalg.norm(column) - 1) < 1e-3
    if not unit or abs(float(row @ column)) > 1e-3:
        raise DicomError(f"{path}: ImageOrientationPatient {list(orientation)} is not two orthogonal unit vectors")


def _check_pixel_data(path: Path, ds: pydicom.Dataset, rows: int, columns: int, samples: int, bits: int) -> None:
    """One frame of pixel data of the announced size (native), or one well-formed encapsulated frame (compressed)."""
    (frames,) = _values(ds, path, "NumberOfFrames", 1, _positive(int)) if "NumberOfFrames" in ds else (1,)
    if frames != 1:
        raise DicomError(f"{path}: {frames} frames in one file; one frame (one slice) per file is read")
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        raise DicomError(f"{path}: no TransferSyntaxUID in the file meta information")
    syntax = UID(str(syntax))
    if not syntax.is_transfer_syntax:
        raise DicomError(f"{path}: unknown transfer syntax {syntax}")
    raw = ds.get_item("PixelData")
    if isinstance(raw, RawDataElement):
        data, encapsulated = raw.value, raw.length == _UNDEFINED_LENGTH
    else:
        data, encapsulated = raw.value, raw.is_undefined_length
    if syntax.is_encapsulated != encapsulated:
        state = "encapsulated" if encapsulated else "not encapsulated"
        raise DicomError(f"{path}: transfer syntax {syntax.name} but the pixel data is {state}")
    if not encapsulated:
        expected = math.ceil(rows * columns * samples * bits / 8)
        if len(data) < expected:
            raise DicomError(
                f"{path}: truncated pixel data: {len(data)} bytes where {rows}x{columns} pixels of {samples} "
                f"sample(s) of {bits} bits need {expected}"
            )
        if len(data) > expected + 1:  # one byte pads an odd length
            raise DicomError(
                f"{path}: pixel data of {len(data)} bytes, but Rows {rows}, Columns {columns}, SamplesPerPixel "
                f"{samples} and BitsAllocated {bits} make {expected}"
            )
        return
    try:
        (frame,) = list(generate_frames(data, number_of_frames=1))
    except Exception as error:  # pydicom's parser of the encapsulation fails with several types
        raise DicomError(f"{path}: corrupt encapsulated pixel data: {_first_line(error)}") from error
    if syntax in _JPEG_FAMILY and not frame.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise DicomError(f"{path}: truncated {syntax.name} frame: no end-of-image marker")
    if syntax == RLELossless:
        segments = int.from_bytes(frame[:4], "little") if len(frame) >= 64 else 0
        offsets = [int.from_bytes(frame[4 * i : 4 * i + 4], "little") for i in range(1, segments + 1)]
        if not 1 <= segments <= 15 or offsets != sorted(offsets) or not all(64 <= o < len(frame) for o in offsets):
            raise DicomError(f"{path}: corrupt RLE frame header")


def _image_format(ds: pydicom.Dataset, path: Path) -> tuple[int, int, int, int]:
    """Rows, Columns, SamplesPerPixel and BitsAllocated, checked."""
    rows, columns, samples, bits = (
        _values(ds, path, keyword, 1, _positive(int))[0]
        for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated")
    )
    if bits not in (1, 8, 16, 32, 64):
        raise DicomError(f"{path}: BitsAllocated {bits} is not 1, 8, 16, 32 or 64")
    return rows, columns, samples, bits


def check_dicom_file(path: str | Path) -> pydicom.Dataset:
    """Read one DICOM file with pydicom and check that it is complete and holds one frame of the announced size.

    The checks of every slice of :func:`check_dicom_series` that need no other slice: a DICOM Part 10 file that
    pydicom parses, no element cut short by the end of the file, one frame of pixel data of the size that Rows,
    Columns, SamplesPerPixel and BitsAllocated announce (uncompressed), or a well-formed encapsulated frame
    (compressed), and, where present, numeric RescaleIntercept and RescaleSlope and BitsStored and HighBit within
    BitsAllocated. Returns the dataset (pixel data undecoded).

    Raises:
        DicomError: naming the file and the problem.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DicomError(f"{path}: empty file")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # pydicom warns about odd values (the checks below decide) and EOF
            ds = pydicom.dcmread(path)
    except DicomError:
        raise
    except InvalidDicomError as error:
        raise DicomError(f"{path}: not a DICOM file (no 'DICM' marker after the 128-byte preamble)") from error
    except Exception as error:  # pydicom's parser fails with many types on corrupt bytes; OSError for the file
        raise DicomError(f"{path}: unreadable DICOM file: {_first_line(error)}") from error
    end_of_file = next((str(w.message) for w in caught if "End of file" in str(w.message)), None)
    if end_of_file is not None:  # pydicom then returns what it read, or nothing: the file is cut short
        raise DicomError(f"{path}: truncated file: {end_of_file.replace(f' in file {path}', '')}")
    if len(ds) == 0:
        raise DicomError(f"{path}: no data set after the file meta information (a truncated file?)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check_complete(path, ds)
        image_format = _image_format(ds, path)
        _check_pixel_data(path, ds, *image_format)
        _check_pixel_values(path, ds, image_format[3])
    return ds


def _check_pixel_values(path: Path, ds: pydicom.Dataset, bits: int) -> None:
    """The optional elements a reader uses to turn stored values into pixels: numbers of the right kind."""
    for keyword in ("RescaleIntercept", "RescaleSlope"):
        if keyword in ds:
            _values(ds, path, keyword, 1, float)
    if "RescaleSlope" in ds and _values(ds, path, "RescaleSlope", 1, float)[0] == 0:
        raise DicomError(f"{path}: RescaleSlope 0: every pixel would be RescaleIntercept; the file is refused")
    if "BitsStored" in ds:
        (stored,) = _values(ds, path, "BitsStored", 1, _positive(int))
        if stored > bits:
            raise DicomError(f"{path}: BitsStored {stored} exceeds BitsAllocated {bits}")
    if "HighBit" in ds:
        (high,) = _values(ds, path, "HighBit", 1, int)
        if not 0 <= high < bits:
            raise DicomError(f"{path}: HighBit {high} outside the {bits} bits allocated")


def _read_slice(path: Path) -> _Slice:
    """The header of one slice file, checked on its own (see the module docstring)."""
    ds = check_dicom_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows, columns, samples, bits = _image_format(ds, path)
        orientation = _values(ds, path, "ImageOrientationPatient", 6, float)
        _check_orientation(path, orientation)
        return _Slice(
            path=path,
            series_uid=_uid(ds, path, "SeriesInstanceUID"),
            study_uid=_uid(ds, path, "StudyInstanceUID", required=False),
            frame_of_reference_uid=_uid(ds, path, "FrameOfReferenceUID", required=False),
            rows=rows,
            columns=columns,
            pixel_spacing=_values(ds, path, "PixelSpacing", 2, _positive(float)),
            orientation=orientation,
            position=_values(ds, path, "ImagePositionPatient", 3, float),
            bits_allocated=bits,
            samples_per_pixel=samples,
            pixel_representation=_values(ds, path, "PixelRepresentation", 1, int)[0],
        )


def _names(paths: Sequence[Path], limit: int = 3) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and a and isinstance(a[0], float):
        return np.allclose(a, b, rtol=_GEOMETRY_TOLERANCE, atol=_GEOMETRY_TOLERANCE)
    return a == b


def _check_one_series(folder: Path, slices: Sequence[_Slice]) -> None:
    by_uid = Counter(s.series_uid for s in slices)
    if len(by_uid) > 1:
        found = "; ".join(
            f"{uid} ({count} file(s): {_names([s.path for s in slices if s.series_uid == uid])})"
            for uid, count in by_uid.most_common()
        )
        raise DicomError(f"{folder}: {len(by_uid)} series in one folder: {found}")


def _check_shared(folder: Path, slices: Sequence[_Slice]) -> None:
    """The attributes every slice of a volume must share; the files that differ from the majority are named."""
    for attribute, keyword in (
        ("rows", "Rows"),
        ("columns", "Columns"),
        ("pixel_spacing", "PixelSpacing"),
        ("orientation", "ImageOrientationPatient"),
        ("bits_allocated", "BitsAllocated"),
        ("samples_per_pixel", "SamplesPerPixel"),
        ("pixel_representation", "PixelRepresentation"),
        ("frame_of_reference_uid", "FrameOfReferenceUID"),
    ):
        values = [getattr(s, attribute) for s in slices]
        common, count = Counter(values).most_common(1)[0]
        odd = [s.path for s, value in zip(slices, values) if not _same(value, common)]
        if odd:
            value = getattr(next(s for s in slices if s.path == odd[0]), attribute)
            others = f" (also {_names(odd[1:])})" if len(odd) > 1 else ""
            raise DicomError(
                f"{odd[0]}: {keyword} {_shown(value)} differs from the series' {_shown(common)} "
                f"({count} of {len(slices)} files){others}"
            )


#: How far (in pixels) a slice's position may be off the line through the first slice along the normal.
_IN_PLANE_TOLERANCE = 0.1


def _check_stacked(folder: Path, slices: Sequence[_Slice]) -> None:
    """Raise when slice positions drift in-plane from the first slice's normal (gantry tilt, shear)."""
    orientation = np.asarray(slices[0].orientation)
    row, column = orientation[:3], orientation[3:]
    origin = np.asarray(slices[0].position)
    offsets = [np.hypot(np.dot(np.subtract(s.position, origin), row), np.dot(np.subtract(s.position, origin), column))
               for s in slices]  # fmt: skip
    worst = int(np.argmax(offsets))
    limit = _IN_PLANE_TOLERANCE * min(slices[0].pixel_spacing)
    if offsets[worst] > limit:
        raise DicomError(
            f"{folder}: the slices are not stacked along their normal: {slices[worst].path.name} lies "
            f"{offsets[worst]:.2f} mm in-plane off it (a gantry-tilted or sheared series); a volume read on a "
            "rectilinear grid would not sit where the scan is, so the series is refused (resample it first)"
        )


def _slice_order(folder: Path, slices: Sequence[_Slice], tolerance: float) -> tuple[list[int], np.ndarray, float]:
    """Slice order, positions along the normal and spacing; coinciding, missing or unevenly spaced slices raise."""
    orientation = np.asarray(slices[0].orientation)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([np.dot(s.position, normal) for s in slices])
    order = [int(i) for i in np.argsort(positions, kind="stable")]
    positions = positions[order]
    if len(slices) == 1:
        return order, positions, 1.0
    gaps = np.diff(positions)
    spacing = float(np.median(gaps))
    for i, gap in enumerate(gaps):
        a, b = slices[order[i]].path.name, slices[order[i + 1]].path.name
        if gap <= tolerance * spacing:
            raise DicomError(f"{folder}: {a} and {b} lie at the same slice position ({positions[i]:.3f} mm)")
        if abs(gap - spacing) > tolerance * spacing:
            k = round(gap / spacing)
            if k >= 2 and abs(gap - k * spacing) <= tolerance * spacing:
                raise DicomError(
                    f"{folder}: {k - 1} missing slice(s) between {a} and {b}: a gap of {gap:.3f} mm where the "
                    f"series' spacing is {spacing:.3f} mm"
                )
            raise DicomError(
                f"{folder}: uneven slice spacing between {a} and {b}: {gap:.3f} mm where the series' spacing is "
                f"{spacing:.3f} mm (tolerance {tolerance:.0%})"
            )
    return order, positions, spacing


def check_dicom_series(folder: str | Path, spacing_tolerance: float = 0.01) -> SeriesInfo:
    """Check a folder holding one DICOM series (see the module docstring) and describe it.

    Args:
        folder: the series folder.
        spacing_tolerance: how far a gap between slice positions may be from the series' spacing (the median
            gap), relative to that spacing.

    Raises:
        DicomError: naming the offending file (or the folder and the files concerned) and the problem; when
            several files are bad, the first by name is described and the others are counted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DicomError(f"{folder}: not a folder")
    files = series_files(folder)
    if not files:
        raise DicomError(f"{folder}: no file in the series folder")
    slices, errors = [], []
    for path in files:
        try:
            slices.append(_read_slice(path))
        except DicomError as error:
            errors.append((path, error))
    if errors:
        first, rest = errors[0][1], [path for path, _ in errors[1:]]
        more = f" (and {len(rest)} more bad file(s): {_names(rest)})" if rest else ""
        raise DicomError(f"{first}{more}") from first
    _check_one_series(folder, slices)
    _check_shared(folder, slices)
    _check_stacked(folder, slices)
    order, positions, spacing = _slice_order(folder, slices, spacing_tolerance)
    first = slices[order[0]]
    row_spacing, column_spacing = first.pixel_spacing
    return SeriesInfo(
        folder=folder,
        files=tuple(slices[i].path for i in order),
        series_uid=first.series_uid,
        study_uid=first.study_uid,
        frame_of_reference_uid=first.frame_of_reference_uid,
        size=(first.columns, first.rows, len(slices)),
        spacing=(column_spacing, row_spacing, spacing),
        origin=first.position,
        orientation=first.orientation,
        positions=tuple(float(p) for p in positions),
    )
