"""k-fold cross-validation splits grouped by patient, with a validation share carved from each training fold.

The papers evaluate with 4-fold cross-validation over scans (SegCaps: never over slices) and keep
10 % of each training fold for validation (SegCaps: ``train_test_split(test_size=0.1,
random_state=7)``). Here the folds come from scikit-learn's ``GroupKFold`` (shuffled with the seed)
and the validation share from ``GroupShuffleSplit``, both grouped by ``group_key`` so that the
images of one patient (or the slices of one scan) never straddle two subsets.

The result is stored in the datalist JSON written by ``medseg prepare``: every entry gets the
``"fold"`` it is tested in (MONAI Auto3DSeg's key), and ``"folds"`` lists, per fold, the case names
of its ``train``, ``validation`` and ``test`` subsets. :func:`fold_datalists` reads them back.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold, GroupShuffleSplit

__all__ = [
    "SUBSETS",
    "Fold",
    "assign_folds",
    "carve_validation",
    "fold_datalists",
    "kfold_splits",
    "official_subsets",
    "source_split",
    "training_split",
]

#: The subsets of a training run.
SUBSETS = ("train", "validation", "test")


@dataclass(frozen=True)
class Fold:
    """Case names of the train, validation and test subsets of one fold."""

    fold: int
    train: list[str]
    validation: list[str]
    test: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def _groups(datalist: Sequence[Mapping], group_key: str) -> np.ndarray:
    return np.array([str(entry.get(group_key, entry["case"])) for entry in datalist])


def kfold_splits(
    datalist: Sequence[Mapping],
    n_folds: int = 4,
    val_fraction: float = 0.1,
    seed: int = 0,
    group_key: str = "patient",
) -> list[Fold]:
    """Grouped k-fold splits of ``datalist`` (entries with a unique ``"case"``).

    Args:
        datalist: entries with a ``"case"`` name and, optionally, a ``group_key``; entries without
            one form a group of their own.
        n_folds: number of folds k (at least 2); every case is in the test subset of exactly one.
        val_fraction: share of each training fold's groups moved to validation (``0 <= f < 1``); the
            number of validation groups is rounded up, as scikit-learn does.
        seed: seeds the fold assignment and the validation draw; the same seed gives the same splits.
        group_key: entry key of the group (patient, person, scan).

    Raises:
        ValueError: when the cases are not unique, ``n_folds`` is below 2 or above the number of
            groups, or ``val_fraction`` is outside [0, 1).
    """
    cases = np.array([str(entry["case"]) for entry in datalist])
    if len(set(cases)) != len(cases):
        duplicated = sorted({str(c) for c in cases if (cases == c).sum() > 1})
        raise ValueError(f"kfold_splits: case names must be unique, repeated: {duplicated[:5]}")
    groups = _groups(datalist, group_key)
    n_groups = len(set(groups))
    if not 2 <= n_folds <= n_groups:
        raise ValueError(
            f"kfold_splits: n_folds must be between 2 and the number of groups ({n_groups}), got {n_folds}"
        )
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"kfold_splits: val_fraction must be in [0, 1), got {val_fraction}")
    folds = []
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (train_idx, test_idx) in enumerate(splitter.split(cases, groups=groups)):
        keep, val = _carve(groups[train_idx], val_fraction, seed)
        folds.append(Fold(k, sorted(cases[train_idx[keep]]), sorted(cases[train_idx[val]]), sorted(cases[test_idx])))
    return folds


def source_split(
    datalist: Sequence[Mapping],
    test_source: str,
    val_fraction: float = 0.1,
    seed: int = 0,
    group_key: str = "patient",
) -> Fold:
    """One fold that tests on every case of ``test_source`` and trains on the other sources' cases, of which
    ``val_fraction`` of the groups go to validation: the generalisation to a source (a hospital) never seen in
    training. Entries carry their ``"source"``.

    Raises:
        ValueError: when no entry, or every entry, comes from ``test_source``.
    """
    sources = sorted({str(entry.get("source")) for entry in datalist})
    test = [entry for entry in datalist if entry.get("source") == test_source]
    rest = [entry for entry in datalist if entry.get("source") != test_source]
    if not test:
        raise ValueError(f"source_split: no case from source {test_source!r}; the sources are {', '.join(sources)}")
    if not rest:
        raise ValueError(f"source_split: every case is from {test_source!r}: nothing to train on")
    cases = np.array([str(entry["case"]) for entry in rest])
    keep, val = _carve(_groups(rest, group_key), val_fraction, seed)
    return Fold(0, sorted(cases[keep]), sorted(cases[val]), sorted(str(entry["case"]) for entry in test))


def training_split(
    datalist: Sequence[Mapping], val_fraction: float = 0.1, seed: int = 0, group_key: str = "patient"
) -> Fold:
    """One fold without a test subset: every case trains but ``val_fraction`` of the groups, which validate (a model
    to use rather than to measure: with a handful of scans, cross-validation would train each fold on fewer)."""
    cases = np.array([str(entry["case"]) for entry in datalist])
    keep, val = _carve(_groups(datalist, group_key), val_fraction, seed)
    return Fold(0, sorted(cases[keep]), sorted(cases[val]), [])


def _carve(groups: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices kept for training and moved to validation: ``val_fraction`` of the groups, rounded up."""
    everything = np.arange(len(groups))
    n_groups = len(set(groups))
    if val_fraction <= 0 or math.ceil(val_fraction * n_groups) >= n_groups:
        return everything, everything[:0]
    carve = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    return next(carve.split(everything, groups=groups))


def carve_validation(
    entries: Sequence[Mapping], val_fraction: float = 0.1, seed: int = 0, group_key: str = "patient"
) -> tuple[list[dict], list[dict]]:
    """``(train, validation)``: ``val_fraction`` of the groups of ``entries`` moved to validation, as in each fold.

    The draw is scikit-learn's ``GroupShuffleSplit`` with the seed, the one :func:`kfold_splits` uses.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"carve_validation: val_fraction must be in [0, 1), got {val_fraction}")
    keep, val = _carve(_groups(entries, group_key), val_fraction, seed)
    return [dict(entries[i]) for i in keep], [dict(entries[i]) for i in val]


def assign_folds(datalist: Sequence[Mapping], folds: Sequence[Fold]) -> list[dict]:
    """Copies of the entries with the ``"fold"`` in whose test subset each one is (an entry tested in no fold, as
    the training sources of a :func:`source_split`, has none)."""
    test_fold = {case: fold.fold for fold in folds for case in fold.test}
    return [
        {**entry, "fold": test_fold[str(entry["case"])]} if str(entry["case"]) in test_fold else dict(entry)
        for entry in datalist
    ]


def fold_datalists(source: str | Path | Mapping, fold: int, data_list_key: str = "training") -> dict[str, list[dict]]:
    """The ``train``, ``validation`` and ``test`` entries of ``fold`` from a ``medseg prepare`` datalist.

    Args:
        source: the datalist JSON path, or its loaded content.
        fold: fold number, ``0 <= fold < k``.
        data_list_key: key of the entries, as in MONAI's ``load_decathlon_datalist``.
    """
    data = json.loads(Path(source).read_text()) if isinstance(source, (str, Path)) else source
    folds = data.get("folds") or []
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold {fold} not in the datalist, which has {len(folds)} fold(s)")
    by_case = {str(entry["case"]): entry for entry in data[data_list_key]}
    return {subset: [by_case[c] for c in folds[fold][subset]] for subset in ("train", "validation", "test")}


def official_subsets(entries: Sequence[Mapping], val_fraction: float = 0.1, seed: int = 0) -> dict[str, list[dict]]:
    """The subsets of a dataset's official split lists (each entry's ``"split"``: LFW Part Labels' lists).

    Without a test list (the ``lfw_parts`` subset has only the train and validation lists), the official validation
    list is the test set and ``val_fraction`` of the training groups are carved out for validation.
    """
    by_split: dict[str, list[dict]] = defaultdict(list)
    for entry in entries:
        by_split[entry["split"]].append(dict(entry))
    if by_split["test"]:
        return {subset: by_split[subset] for subset in SUBSETS}
    train, validation = carve_validation(by_split["train"], val_fraction, seed)
    return {"train": train, "validation": validation, "test": by_split["validation"]}
