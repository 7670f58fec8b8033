"""A dataset folder -> a validated MONAI datalist JSON with grouped k-fold splits.

What ``medseg prepare`` runs, and the bundles when they are given a dataset folder instead of a datalist.

:func:`prepare_datalist` finds the image/mask pairs with the task's adapter, loads every pair with the task's
pre-processing at native size (the pipelines training uses, from the task record :mod:`medseg.tasks`), and
keeps the pairs that are readable, of one size (one voxel grid for volumes) and with a non-empty mask. It
counts cases, slices and foreground pixels, reports the negative/positive pixel ratio with
:func:`medseg.losses.compute_pos_weight` (SegCaps' weighted-BCE weight: the papers report 28.9 for LUNA16 and
2.15 for LFW), assigns grouped folds (:mod:`medseg.data.splits`) and writes the JSON atomically (temporary
file, then rename). Bad pairs are listed with their reason; the others are still written. An error that is
not about one pair (a bug, a full disk) stops the run and writes nothing: the datalist is never cut short.

The JSON follows MONAI's Decathlon datalist: ``"training"`` holds the entries (absolute paths, so
``monai.data.load_decathlon_datalist(path)`` reads it as is), each with its test ``"fold"``; volume
entries also carry ``"num_slices"`` and ``"foreground_slices"`` (axial), which
:class:`medseg.data.SliceDataset` uses instead of re-reading the volumes. ``"folds"`` lists the case
names of each fold's subsets (:func:`medseg.data.fold_datalists`), ``"summary"`` the figures,
``"options"`` the task options that shaped the datalist and ``"bad_pairs"`` what was left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.data import (
    BadPair,
    Fold,
    assign_folds,
    foreground_slices,
    kfold_splits,
    source_split,
    training_split,
)
from medseg.data.layout import LayoutError
from medseg.dicom import DicomError
from medseg.files import check_output_file, write_json
from medseg.losses import compute_pos_weight
from medseg.transforms import ImageFileError

from .base import Task, get_task

__all__ = ["PrepareReport", "format_report", "prepare_datalist", "same_grid"]

_REPORTED_RATIOS = "the papers report 28.9 for LUNA16, 2.15 for LFW"


@dataclass
class PrepareReport:
    """What :func:`prepare_datalist` found, kept and wrote."""

    task: str
    data_root: str | list[str]
    datalist: list[dict]
    bad_pairs: list[BadPair]
    summary: dict
    folds: list[Fold] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    out: str | None = None

    def to_json(self) -> dict:
        return {
            "name": f"medseg prepare --task {self.task}",
            "task": self.task,
            "data_root": self.data_root,
            "options": self.options,
            "summary": self.summary,
            "numTraining": len(self.datalist),
            "training": self.datalist,
            "folds": [fold.to_dict() for fold in self.folds],
            "bad_pairs": [bad.to_dict() for bad in self.bad_pairs],
        }


def same_grid(a: np.ndarray, b: np.ndarray, tolerance: float = 0.01) -> bool:
    """Whether two voxel-to-world affines describe one grid, within ``tolerance`` of a voxel.

    Direction-and-spacing columns must agree within 0.1 % of the largest spacing, origins within
    ``tolerance`` times the smallest spacing (a DICOM series and the NRRD written from it differ by
    rounding: 0.0004 mm on ``ct_cip``).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return False
    n = a.shape[0] - 1
    spacing = np.linalg.norm(a[:n, :n], axis=0)
    return bool(
        np.allclose(a[:n, :n], b[:n, :n], rtol=0, atol=1e-3 * spacing.max())
        and np.allclose(a[:n, n], b[:n, n], rtol=0, atol=tolerance * spacing.min())
    )


def _read_failure(error: BaseException) -> str:
    """Why a pair could not be loaded: medseg's description of a bad file (it names the file and the problem), else
    the first line of the deepest cause (MONAI wraps a reader's error in the transforms' errors)."""
    while not isinstance(error, (ImageFileError, DicomError)) and error.__cause__ is not None:
        error = error.__cause__
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    return first if isinstance(error, (ImageFileError, DicomError)) else f"{type(error).__name__}: {first}".strip()


class _Checker:
    """Loads each pair once, keeps the good ones, and streams their 2D masks to :func:`compute_pos_weight`."""

    def __init__(self, task: Task, transform: Callable) -> None:
        self.volume = task.volumetric
        self.transform = transform
        self.valid: list[dict] = []
        self.bad: list[BadPair] = []
        self.slices = self.slices_with_foreground = 0
        self.foreground = self.pixels = 0
        self.finished = False

    def _check(self, entry: Mapping) -> tuple[dict | None, str]:
        try:
            item = self.transform(dict(entry))
        except Exception as error:  # any reader or decoder failure makes the pair bad, with the reason
            return None, f"unreadable: {_read_failure(error)}"
        image, label = item["image"], item["label"]
        if tuple(image.shape[1:]) != tuple(label.shape[1:]):
            return None, f"size mismatch: image {tuple(image.shape[1:])} vs mask {tuple(label.shape[1:])}"
        if self.volume and not same_grid(image.affine, label.affine):
            image_affine, label_affine = (np.round(np.asarray(a), 3).tolist() for a in (image.affine, label.affine))
            return None, f"grid mismatch: image affine {image_affine} vs mask {label_affine}"
        if not bool(label.any()):
            return None, "empty mask"
        return item, ""

    def masks(self, datalist: list[dict]) -> Iterator[np.ndarray]:
        for entry in datalist:
            item, reason = self._check(entry)
            if item is None:
                label = entry["label"]
                self.bad.append(
                    BadPair(str(entry["image"]), ", ".join(label) if isinstance(label, list) else str(label), reason)
                )
                continue
            label = np.asarray(item["label"])[0] > 0
            entry = dict(entry)
            if self.volume:
                entry["num_slices"] = int(label.shape[-1])
                entry["foreground_slices"] = foreground_slices(item["label"])
                self.slices += entry["num_slices"]
                self.slices_with_foreground += len(entry["foreground_slices"])
                planes = [label[..., k] for k in range(label.shape[-1])]
            else:
                self.slices += 1
                self.slices_with_foreground += 1
                planes = [label]
            self.foreground += int(label.sum())
            self.pixels += label.size
            self.valid.append(entry)
            yield from planes
        self.finished = True


def prepare_datalist(
    task: str,
    data_root: str | Path | Sequence[str | Path],
    out: str | Path | None = None,
    n_folds: int = 4,
    val_fraction: float = 0.1,
    seed: int = 0,
    test_source: str | None = None,
    **options: Any,
) -> PrepareReport:
    """Find, validate and summarise the pairs of ``data_root``, split them into folds, write ``out``.

    Args:
        task: a task name of :mod:`medseg.tasks` (``luna16``, ``ct``, ``cxr``, ``lfw``, ``helen``, ...).
        data_root: the dataset folder, in its published layout; or several (two hospitals' radiographs). Each
            entry records its ``"source"``, the name of its folder; with several folders, case and patient names
            are prefixed by it (``cxr_openist/NAME``), so that they stay unique and a group never spans two.
        test_source: one source's name: instead of k folds, one fold that tests on that source and trains on
            the others (:func:`medseg.data.source_split`).
        out: the datalist JSON to write; ``None`` writes nothing.
        n_folds: k of the grouped k-fold splits; 1: one fold that trains on every case but the validation share,
            with no test subset (:func:`medseg.data.training_split`); 0: no folds (official splits only, if any).
        val_fraction, seed: the validation share carved from each training fold, and the seed.
        options: the task's options (e.g. ``include_hair`` for faces, ``foreground`` for LUNA16,
            ``mask_pattern`` for folders); those of the pairs and label stages are recorded in the JSON.

    Raises:
        OutputPathError: when ``out`` cannot be written (checked first, before any data is read).
        LayoutError, MissingFileError: from the adapter, when the layout is not recognised or ``data_root`` is
            not a folder.
        ValueError: for an unknown task or option, when no pair is valid (nothing is written then), or when
            the folds cannot be made (``n_folds`` negative, more folds than patients, ``val_fraction``
            outside [0, 1), a negative ``seed``).
    """
    dataset_task = get_task(task)
    recorded = dataset_task.resolve_options(("pairs", "label"), **options)
    _check_split_arguments(n_folds, val_fraction, seed)
    roots = [Path(data_root)] if isinstance(data_root, (str, Path)) else [Path(r) for r in data_root]
    names = check_sources(roots, test_source)
    if out is not None:
        check_output_file(out)
    skipped: list[BadPair] = []
    pairs = _find_pairs(dataset_task, roots, names, skipped, options)
    root: str | list[str] = str(roots[0].resolve()) if len(roots) == 1 else [str(r.resolve()) for r in roots]
    checker, pos_weight = _validate(dataset_task, pairs, options)
    bad = skipped + checker.bad
    if not checker.valid:
        reasons = "; ".join(str(b) for b in bad[:3])
        raise ValueError(f"{root}: no valid {task} pair among {len(pairs) + len(skipped)} found ({reasons})")
    if test_source is not None:
        folds = [source_split(checker.valid, test_source, val_fraction, seed)]
    elif n_folds == 1:
        folds = [training_split(checker.valid, val_fraction, seed)]
    else:
        folds = kfold_splits(checker.valid, n_folds, val_fraction, seed) if n_folds else []
    datalist = assign_folds(checker.valid, folds) if folds else checker.valid
    summary = _summary(datalist, len(pairs) + len(skipped), len(bad), checker, pos_weight)
    settings = {
        "n_folds": len(folds),
        "test_source": test_source,
        "val_fraction": val_fraction,
        "seed": seed,
        "group_key": "patient",
        **{name: list(value) if isinstance(value, tuple) else value for name, value in recorded.items()},
    }
    report = PrepareReport(task, root, datalist, bad, summary, folds, settings)
    if out is not None:
        report.out = str(write_json(out, report.to_json()))
    return report


def _check_split_arguments(n_folds: int, val_fraction: float, seed: int) -> None:
    if n_folds < 0:
        raise ValueError(f"n_folds must be 0 (no folds), 1 (one fold without a test subset) or more, got {n_folds}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")


def _find_pairs(
    task: Task, roots: Sequence[Path], names: Sequence[str], skipped: list[BadPair], options: Mapping[str, Any]
) -> list[dict]:
    """The pairs the task's adapter finds in each root, with their source; what it skips goes to ``skipped``."""
    for root in roots:
        if not root.is_dir():
            raise LayoutError(f"{root}: not a folder")
    return [
        _with_source(pair, name, len(roots) > 1)
        for root, name in zip(roots, names)
        for pair in task.find_pairs(root.resolve(), skipped, **options)
    ]


def _validate(task: Task, pairs: list[dict], options: Mapping[str, Any]) -> tuple[_Checker, float | None]:
    """Every pair loaded and checked once (:class:`_Checker`); the negative/positive pixel ratio of the good ones
    (``None`` when there is none, or no background pixel)."""
    checker = _Checker(task, task.pair_transforms(None, **options))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-pair work is small: worker threads only add wake-up stalls on a busy machine
    try:
        return checker, compute_pos_weight(checker.masks(pairs))
    except ValueError:
        if not checker.finished:  # an error while checking the pairs, not the ratio's own
            raise
        return checker, None  # no valid pair, or no background pixel in the masks with foreground: no ratio
    finally:
        torch.set_num_threads(threads)


def _summary(datalist: list[dict], found: int, bad: int, checker: _Checker, pos_weight: float | None) -> dict:
    """The figures ``medseg prepare`` prints and records."""
    return {
        "pairs_found": found,
        "cases": len(datalist),
        "groups": len({entry.get("patient", entry["case"]) for entry in datalist}),
        "bad_pairs": bad,
        "slices": checker.slices,
        "slices_with_foreground": checker.slices_with_foreground,
        "foreground_fraction": checker.foreground / checker.pixels,
        "pos_weight": pos_weight,
        "splits": dict(Counter(entry["split"] for entry in datalist if "split" in entry)),
        "sources": dict(Counter(entry["source"] for entry in datalist)),
    }


def check_sources(roots: Sequence[str | Path], test_source: str | None = None) -> list[str]:
    """The source names of data roots (their folder names), checked before any data is read.

    Raises:
        ValueError: for two roots of one name, or a ``test_source`` that is none of them.
    """
    names = [Path(root).resolve().name for root in roots]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"data roots must have different folder names (their source names), repeated: {repeated}")
    if test_source is not None and test_source not in names:
        raise ValueError(f"no data root is named {test_source!r}; the sources are {', '.join(names)}")
    if test_source is not None and len(names) < 2:
        raise ValueError(f"--test-source {test_source}: it needs another source to train on")
    return names


def _with_source(pair: dict, source: str, prefix: bool) -> dict:
    """The pair with its source, and (several sources) the source before its case and patient names."""
    entry = {**pair, "source": source}
    if prefix:
        entry["patient"] = f"{source}/{pair.get('patient', pair['case'])}"
        entry["case"] = f"{source}/{pair['case']}"
    return entry


def format_report(report: PrepareReport) -> str:
    """The summary ``medseg prepare`` prints."""
    s = report.summary
    splits = ", ".join(f"{name} {count}" for name, count in s["splits"].items())
    if s["pos_weight"] is None:
        ratio = "undefined: the masks with foreground have no background pixel, so no pos_weight for weighted BCE"
    else:
        ratio = f"{s['pos_weight']:.3f} over masks with foreground (SegCaps' pos_weight; {_REPORTED_RATIOS})"
    lines = [
        f"medseg prepare --task {report.task}: "
        + (report.data_root if isinstance(report.data_root, str) else ", ".join(report.data_root)),
        f"  pairs found          {s['pairs_found']}",
        f"  valid pairs          {s['cases']}" + (f" (official splits: {splits})" if splits else ""),
        f"  bad pairs            {s['bad_pairs']}",
        f"  cases                {s['cases']} in {s['groups']} group(s) by patient "
        "(a group never straddles two subsets)",
        f"  slices               {s['slices']} ({s['slices_with_foreground']} with foreground)",
        f"  foreground fraction  {s['foreground_fraction']:.4f} of all pixels",
        f"  neg/pos pixel ratio  {ratio}",
    ]
    if len(s.get("sources", {})) > 1:
        lines.insert(
            5, "  sources              " + ", ".join(f"{name} {count}" for name, count in s["sources"].items())
        )
    if report.folds:
        o = report.options
        if o.get("test_source"):
            kind = f"test source {o['test_source']}, trained on the others"
        else:
            kind = "grouped by patient" + (", no test subset: a model to use" if not report.folds[0].test else "")
        lines.append(
            f"  folds                {len(report.folds)}, {kind}, validation {o['val_fraction']:.0%} "
            f"of each training fold, seed {o['seed']}"
        )
        for fold in report.folds:
            subsets = f"train {len(fold.train)}, validation {len(fold.validation)}, test {len(fold.test)}"
            lines.append(f"    fold {fold.fold}: {subsets}")
    if report.bad_pairs:
        lines.append(f"bad pairs ({len(report.bad_pairs)}), left out:")
        lines += [f"  {bad}" for bad in report.bad_pairs]
    if report.out:
        lines.append(f"wrote {report.out}")
    return "\n".join(lines)
