"""What to segment: the cases behind the paths a user gives ``medseg infer``.

A path may be an image file (NIfTI, NRRD, MHA/MHD, PNG, JPEG, a DICOM file with or without ``.dcm``), a folder
holding one DICOM series, a folder of such files and series folders (batch mode), or a glob of any of these.
A folder holding several DICOM series gives the largest (most files) unless ``series_uid`` names one; the
others are listed on the case. For a 2D task (chest radiographs, faces), each DICOM file in a folder (or in a
sub-folder) is a case of its own, as a PNG is. Each case is named after its file (without extension) or its
series folder, with ``_2``, ``_3``... when two inputs share a name, so that outputs never collide.

Files that cannot be cases (unknown kinds inside a folder) are left out; a named path that is not an image
becomes a case anyway, which then fails with the reason (so that it is reported, never silently dropped).
"""

from __future__ import annotations

import glob
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from medseg.data.layout import IMAGE_SUFFIXES_2D, VOLUME_SUFFIXES, split_suffix
from medseg.dicom import is_dicom_file

__all__ = ["Case", "InputError", "dicom_series_groups", "find_cases"]

_KNOWN_SUFFIXES = VOLUME_SUFFIXES + IMAGE_SUFFIXES_2D


class InputError(ValueError):
    """A path given on the command line that does not exist or cannot be searched; a usage error."""


@dataclass
class Case:
    """One input to segment.

    Attributes:
        name: unique output name.
        path: the image file, or the DICOM series folder.
        kind: ``"volume"`` (NIfTI, NRRD, MHA/MHD), ``"image"`` (PNG, JPEG), ``"dicom-file"``, ``"dicom-series"``
            or ``"unknown"``.
        files: the series' files (``"dicom-series"``), or ``[path]``.
        series_uid: the DICOM series taken (``"dicom-series"``).
        other_series: the other series found in the folder, ``{uid: number of files}``.
    """

    name: str
    path: Path
    kind: str
    files: list[Path] = field(default_factory=list)
    series_uid: str | None = None
    other_series: dict[str, int] = field(default_factory=dict)

    @property
    def is_dicom(self) -> bool:
        return self.kind in ("dicom-file", "dicom-series")


def _dicom_children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_dicom_file(p))


def dicom_series_groups(files: list[Path]) -> dict[str, list[Path]]:
    """The files by Series Instance UID (header only); files without one, or not parsable, under ``""``."""
    import pydicom

    groups: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        try:
            uid = str(
                pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"]).get(
                    "SeriesInstanceUID", ""
                )
            )
        except Exception:  # an unreadable file stays with the series, whose check names it
            uid = ""
        groups[uid].append(path)
    return dict(groups)


def _series_case(folder: Path, files: list[Path], series_uid: str | None) -> Case:
    groups = dicom_series_groups(files)
    unreadable = groups.pop("", [])
    if not groups:
        return Case(folder.name, folder, "dicom-series", files)
    if series_uid is not None:
        chosen = series_uid if series_uid in groups else None
    else:
        chosen = max(groups, key=lambda uid: len(groups[uid]))
    if chosen is None:
        case = Case(folder.name, folder, "dicom-series", files)
        case.other_series = {uid: len(members) for uid, members in groups.items()}
        return case
    others = {uid: len(members) for uid, members in groups.items() if uid != chosen}
    return Case(folder.name, folder, "dicom-series", sorted(groups[chosen] + unreadable), chosen, others)


def _file_case(path: Path) -> Case:
    stem, suffix = split_suffix(path.name, _KNOWN_SUFFIXES)
    if suffix.lower() in VOLUME_SUFFIXES:
        kind = "volume"
    elif suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
        kind = "image"
    elif is_dicom_file(path):
        kind = "dicom-file"
    else:
        kind = "unknown"
    return Case(stem, path, kind, [path])


def _folder_cases(folder: Path, series_uid: str | None, volumetric: bool) -> list[Case]:
    dicom = _dicom_children(folder)
    if dicom and volumetric:
        return [_series_case(folder, dicom, series_uid)]
    cases = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            series = _dicom_children(child)
            if series and volumetric:
                cases.append(_series_case(child, series, series_uid))
            elif series:
                cases += [_file_case(path) for path in series]
        elif child in dicom or split_suffix(child.name, _KNOWN_SUFFIXES)[1]:
            cases.append(_file_case(child))
    return cases


def _expand(path: str) -> list[Path]:
    if any(character in path for character in "*?["):
        matches = sorted(Path(p) for p in glob.glob(path))
        if not matches:
            raise InputError(f"{path}: no file or folder matches this pattern")
        return matches
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or folder")
    return [Path(path)]


def find_cases(paths: list[str | Path], series_uid: str | None = None, volumetric: bool = True) -> list[Case]:
    """The cases behind ``paths`` (see the module docstring), with unique names, in the order given.

    ``volumetric=False`` (a 2D task: radiographs) makes each DICOM file in a folder a case of its own, as PNG and
    JPEG files are, instead of a slice of the folder's series.

    Raises:
        InputError: for a path that does not exist or a pattern that matches nothing.
    """
    cases: list[Case] = []
    for given in paths:
        for path in _expand(str(given)):
            if path.is_dir():
                found = _folder_cases(path, series_uid, volumetric)
                if not found:
                    raise InputError(f"{path}: no image or DICOM series in this folder")
                cases += found
            else:
                cases.append(_file_case(path))
    seen: Counter[str] = Counter()
    for case in cases:
        seen[case.name] += 1
        if seen[case.name] > 1:
            case.name = f"{case.name}_{seen[case.name]}"
    return cases
