"""The comparison's datalist checked before the first run: every file there, every case named once.

A comparison trains dozens of runs from one datalist. A missing image used to surface only half a minute into
the first run, as MONAI's "Failed to instantiate component ... CacheDataset" with the file's name inside
``train.log``; two entries of one case name gave a bare ``KeyError``, or, with different images, the last entry
won silently (one image never trained on or tested). :func:`datalist_problems` finds all of these at once, before
anything runs, each as one line naming the entry, so that the command can refuse the datalist (exit status 1,
nothing trained) instead.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["datalist_problems"]

#: The keys of a datalist entry that name files a run reads.
FILE_KEYS = ("image", "label")


def _paths(value: Any) -> Iterator[str]:
    """The paths an entry's ``image`` or ``label`` names: a path, or a list of them (left and right lung masks)."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _paths(item)
    elif isinstance(value, str):
        yield value


def _missing(path: str, base: Path) -> str | None:
    """Why ``path`` (relative paths: from ``base``, where the runs read them) is not there, or ``None``: a file, or a
    folder (a DICOM series)."""
    resolved = base / path
    if resolved.is_file() or resolved.is_dir():
        return None
    if resolved.is_symlink():
        return "a link to nothing (or a link loop)"
    return "no such file" if not resolved.exists() else "not a file or folder"


def datalist_problems(datalist: Path, folds: int, base: Path) -> list[str]:
    """Every problem of ``datalist`` for a comparison of ``folds`` folds, one line each, naming the entry (its
    index under ``training`` and its case): an image or label file (or DICOM series folder) that is missing, a case
    name given to several entries, an entry without a case name, and a case of a fold's lists that no entry has.
    Relative paths are read from ``base`` (the bundle folder the runs run in). An empty list: the datalist is
    usable.

    The files of every entry are checked, not only the entries of the folds asked: the datalist's content is what
    the runs are identified by, and a missing file is a fault in it whichever fold reads it.
    """
    data = json.loads(Path(datalist).read_text())
    entries = data.get("training") or []
    problems: list[str] = []
    indices: dict[str, list[int]] = defaultdict(list)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"{datalist}: entry {index}: not an object with image and label")
            continue
        case = entry.get("case")
        where = f"{datalist}: entry {index} (case {case})" if case is not None else f"{datalist}: entry {index}"
        if case is None:
            problems.append(f"{where}: no case name")
        else:
            indices[str(case)].append(index)
        for key in FILE_KEYS:
            if key not in entry:
                problems.append(f"{where}: no {key}")
            for path in _paths(entry.get(key)):
                if reason := _missing(path, base):
                    problems.append(f"{where}: {key} {path}: {reason}")
    for case, found in indices.items():
        if len(found) > 1:
            problems.append(
                f"{datalist}: case {case} is the name of {len(found)} entries ({', '.join(map(str, found))}); "
                "case names must be unique (a fold lists cases by name)"
            )
    for fold in (data.get("folds") or [])[:folds]:
        for subset in ("train", "validation", "test"):
            for case in fold.get(subset) or []:
                if str(case) not in indices:
                    problems.append(
                        f"{datalist}: fold {fold.get('fold')} {subset}: case {case} is in no entry under training"
                    )
    return problems
