"""What to segment: the cases behind the paths a user gives ``medseg infer``.

A path may be an image file (NIfTI, NRRD, MHA/MHD, PNG, JPEG, a DICOM file with or without ``.dcm``), a folder
holding one DICOM series, a folder of such files and series folders (batch mode), or a glob of any of these.
A folder holding several DICOM series gives the largest (most files) unless ``series_uid`` names one; the
others are listed on the case. For a 2D task (chest radiographs, faces), each DICOM file in a folder (or in a
sub-folder) is a case of its own, as a PNG is. Each case is named after its file (without extension) or its
series folder (the folder's own name, also when it is given as ``.``); inputs that share a name are named after as
many of their parent folders as it takes to tell them apart (``c1_x``, ``c2_x``), so that outputs never collide and
a case's name does not depend on the order or on the other inputs' names (:func:`unique_names`).

Files that cannot be cases (unknown kinds inside a folder) are left out; a named path that is not an image
becomes a case anyway, which then fails with the reason (so that it is reported, never silently dropped), and so
does a symbolic link in a folder that leads nowhere (``<path>: symbolic link loop``, ``a link to nothing``).
"""

from __future__ import annotations

import errno
import glob
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from medseg.data.layout import IMAGE_SUFFIXES_2D, VOLUME_SUFFIXES, split_suffix
from medseg.dicom import is_dicom_file

__all__ = ["Case", "InputError", "dicom_series_groups", "find_cases", "unique_names", "unreadable_link"]

_KNOWN_SUFFIXES = VOLUME_SUFFIXES + IMAGE_SUFFIXES_2D


class InputError(ValueError):
    """A path given on the command line that does not exist or cannot be searched; a usage error."""


@dataclass
class Case:
    """One input to segment.

    Attributes:
        name: unique output name.
        path: the image file, or the DICOM series folder.
        kind: ``"volume"`` (NIfTI, NRRD, MHA/MHD), ``"image"`` (PNG, JPEG), ``"dicom-file"``, ``"dicom-series"``,
            ``"special"`` (not a regular file: a FIFO, a socket, a device), ``"link"`` (a symbolic link that leads
            nowhere: a loop, or a link to nothing) or ``"unknown"``.
        files: the series' files (``"dicom-series"``), or ``[path]``.
        series_uid: the DICOM series taken (``"dicom-series"``).
        other_series: the other series found in the folder, ``{uid: number of files}``.
        problem: why the case cannot be read at all (``"link"``: ``symbolic link loop``), reported as its failure.
    """

    name: str
    path: Path
    kind: str
    files: list[Path] = field(default_factory=list)
    series_uid: str | None = None
    other_series: dict[str, int] = field(default_factory=dict)
    problem: str | None = None

    @property
    def is_dicom(self) -> bool:
        return self.kind in ("dicom-file", "dicom-series")


def _dicom_children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_dicom_file(p))


def dicom_series_groups(files: list[Path]) -> dict[str | None, list[Path]]:
    """The files by Series Instance UID (header only): ``""`` for files whose UID is empty or absent (anonymised),
    ``None`` for files pydicom cannot parse (they stay with the series, whose check names them)."""
    import pydicom

    groups: dict[str | None, list[Path]] = defaultdict(list)
    for path in files:
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
            uid: str | None = str(dataset.get("SeriesInstanceUID", "") or "").strip()
        except Exception:  # an unreadable file stays with the series, whose check names it
            uid = None
        groups[uid].append(path)
    return dict(groups)


def _series_case(folder: Path, files: list[Path], series_uid: str | None) -> Case:
    groups = dicom_series_groups(files)
    unreadable = groups.pop(None, [])
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


def unreadable_link(path: str | Path) -> str | None:
    """Why the link ``path`` leads nowhere (``symbolic link loop``, ``a link to nothing: TARGET``); ``None`` for a
    path that is not such a link. :meth:`pathlib.Path.exists` says ``False`` for both, which reads as "no such
    file" although the user sees the file listed in its folder."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if os.path.islink(path):
            return f"a link to nothing: {os.readlink(path)}"
    return None


def _file_case(path: Path) -> Case:
    stem, suffix = split_suffix(path.name, _KNOWN_SUFFIXES)
    if reason := unreadable_link(path):  # fails, named, with the reason: never opened
        return Case(stem, path, "link", [path], problem=reason)
    if path.exists() and not path.is_file():  # a FIFO, a socket, a device: never opened (a FIFO would block)
        kind = "special"
    elif suffix.lower() in VOLUME_SUFFIXES:
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
        elif child in dicom or split_suffix(child.name, _KNOWN_SUFFIXES)[1] or unreadable_link(child):
            cases.append(_file_case(child))  # a special file, a link loop or a link to nothing: fails, reported
    return cases


def _expand(path: str) -> list[Path]:
    if any(character in path for character in "*?["):
        matches = sorted(Path(p) for p in glob.glob(path))
        if not matches:
            raise InputError(f"{path}: no file or folder matches this pattern")
        return matches
    if not Path(path).exists():
        raise InputError(f"{path}: {unreadable_link(path) or 'no such file or folder'}")
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
    for case, name in zip(cases, unique_names([case.path for case in cases])):
        case.name = name
    return cases


def _stem(path: Path) -> str:
    return path.name if path.is_dir() else split_suffix(path.name, _KNOWN_SUFFIXES)[0]


def unique_names(paths: list[Path]) -> list[str]:
    """A name for each path: its stem (a folder: its name), prefixed by as many of its parent folders as it takes to
    be unique among the paths (``c1/x.jpg``, ``c2/x.jpg`` -> ``c1_x``, ``c2_x``); the same paths always give the same
    names. Paths that no prefix sets apart (the same file given twice, or ``x.jpg`` and ``x.dcm`` in one folder) get
    ``_2``, ``_3`` in the order given."""
    resolved = [Path(os.path.abspath(path)) for path in paths]  # as given: a link keeps its own name
    stems = [_stem(path) or path.name for path in resolved]
    depth = [0] * len(paths)

    def name(i: int) -> str:
        parents = resolved[i].parts[:-1]
        prefix = parents[len(parents) - depth[i] :] if depth[i] else ()
        return "_".join([*(part.strip("/") or "root" for part in prefix), stems[i]])

    while True:
        names = [name(i) for i in range(len(paths))]
        folders = defaultdict(set)  # name -> the distinct folders of the paths that have it
        for i, n in enumerate(names):
            folders[n].add(resolved[i].parent)
        clashing = [i for i, n in enumerate(names) if len(folders[n]) > 1 and depth[i] < len(resolved[i].parts) - 1]
        if not clashing:
            break
        for i in clashing:
            depth[i] += 1
    taken, seen = set(names), Counter()
    for i, n in enumerate(names):
        seen[n] += 1
        if seen[n] > 1:
            while f"{n}_{seen[n]}" in taken:  # c3/x_2.jpg beside two x.jpg: the second x is x_3
                seen[n] += 1
            names[i] = f"{n}_{seen[n]}"
            taken.add(names[i])
    return names
