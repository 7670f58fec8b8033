"""``medseg prepare``: a dataset folder -> a validated MONAI datalist JSON with grouped k-fold splits.

:func:`prepare_datalist` finds the image/mask pairs with the task's adapter, loads every pair with
the task's pre-processing at native size (the same presets training uses), and keeps the pairs that
are readable, of one size (one voxel grid for volumes) and with a non-empty mask. It counts cases,
slices and foreground pixels, computes the negative/positive pixel ratio with
:func:`medseg.losses.weights.compute_pos_weight` (SegCaps' weighted-BCE weight: the papers report 28.9
for LUNA16 and 2.15 for LFW), assigns grouped folds (:mod:`medseg.data.splits`) and writes the JSON
atomically (temporary file, then rename). Bad pairs are listed with their reason; the others are
still written.

The JSON follows MONAI's Decathlon datalist: ``"training"`` holds the entries (absolute paths, so
``monai.data.load_decathlon_datalist(path)`` reads it as is), each with its test ``"fold"``; volume
entries also carry ``"num_slices"`` and ``"foreground_slices"`` (axial), which
:class:`medseg.data.SliceDataset` uses instead of re-reading the volumes. ``"folds"`` lists the case
names of each fold's subsets (:func:`medseg.data.fold_datalists`), ``"summary"`` the figures and
``"bad_pairs"`` what was left out.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from medseg.losses.weights import compute_pos_weight
from medseg.transforms import LUNA16_FOREGROUND, ct_transforms, cxr_transforms, face_transforms, luna16_transforms

from .ct import ct_datalist
from .cxr import cxr_datalist
from .faces import helen_datalist, lfw_datalist
from .layout import BadPair
from .luna16 import luna16_datalist
from .slices import foreground_slices
from .splits import Fold, assign_folds, kfold_splits

__all__ = [
    "TASKS",
    "PrepareReport",
    "find_pairs",
    "format_report",
    "pair_transforms",
    "prepare_datalist",
    "same_grid",
    "write_json_atomic",
]

#: ``medseg prepare --task`` names.
TASKS = ("luna16", "ct", "cxr", "lfw", "helen")

_VOLUME_TASKS = ("luna16", "ct")
_REPORTED_RATIOS = "the papers report 28.9 for LUNA16, 2.15 for LFW"


@dataclass
class PrepareReport:
    """What :func:`prepare_datalist` found, kept and wrote."""

    task: str
    data_root: str
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


def find_pairs(
    task: str,
    data_root: str | Path,
    skipped: list[BadPair] | None = None,
    layout: str = "auto",
    mask_pattern: str | None = None,
    image_pattern: str = "*",
    image_dir: str | None = None,
) -> list[dict]:
    """The task's adapter on ``data_root``: LUNA16, generic CT, chest X-ray, LFW or HELEN."""
    if task == "luna16":
        return luna16_datalist(data_root, skipped=skipped)
    if task == "ct":
        return ct_datalist(data_root, mask_pattern, image_pattern, image_dir, skipped)
    if task == "cxr":
        return cxr_datalist(data_root, layout, mask_pattern, image_pattern, image_dir, skipped)
    if task == "lfw":
        return lfw_datalist(data_root, skipped=skipped)
    if task == "helen":
        return helen_datalist(data_root, skipped=skipped)
    raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")


def pair_transforms(task: str, include_hair: bool = True, foreground: tuple[int, ...] | None = None) -> Callable:
    """The task's pre-processing at native size: loads an entry, decodes its mask to one binary channel."""
    if task == "luna16":
        return luna16_transforms(foreground or LUNA16_FOREGROUND)
    if task == "ct":
        return ct_transforms()
    if task == "cxr":
        return cxr_transforms(spatial_size=None)
    if task in ("lfw", "helen"):
        return face_transforms(task, spatial_size=None, include_hair=include_hair)
    raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")


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


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()


class _Checker:
    """Loads each pair once, keeps the good ones, and streams their 2D masks to :func:`compute_pos_weight`."""

    def __init__(self, task: str, transform: Callable) -> None:
        self.volume = task in _VOLUME_TASKS
        self.transform = transform
        self.valid: list[dict] = []
        self.bad: list[BadPair] = []
        self.slices = self.slices_with_foreground = 0
        self.foreground = self.pixels = 0

    def _check(self, entry: Mapping) -> tuple[dict | None, str]:
        try:
            item = self.transform(dict(entry))
        except Exception as error:  # any reader or decoder failure makes the pair bad, with the reason
            return None, f"unreadable: {_root_cause(error)}"
        image, label = item["image"], item["label"]
        if tuple(image.shape[1:]) != tuple(label.shape[1:]):
            return None, f"size mismatch: image {tuple(image.shape[1:])} vs mask {tuple(label.shape[1:])}"
        if self.volume and not same_grid(image.affine, label.affine):
            return (
                None,
                f"grid mismatch: image affine {np.round(np.asarray(image.affine), 3).tolist()} vs mask {np.round(np.asarray(label.affine), 3).tolist()}",
            )
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


# a list of integers as json.dumps(indent=...) lays it out: real newlines occur only between tokens, never in strings
_INT_LIST = re.compile(r"\[\n\s*-?\d+(?:,\n\s*-?\d+)*\n\s*\]")


def _dumps(payload: Mapping) -> str:
    """JSON with one key or entry a line, but lists of integers (slice indices) kept on one line."""
    text = json.dumps(payload, indent=1)
    return _INT_LIST.sub(lambda match: "[" + ", ".join(re.findall(r"-?\d+", match.group(0))) + "]", text) + "\n"


def write_json_atomic(path: str | Path, payload: Mapping) -> Path:
    """Write ``payload`` as JSON to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(_dumps(payload))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def prepare_datalist(
    task: str,
    data_root: str | Path,
    out: str | Path | None = None,
    n_folds: int = 4,
    val_fraction: float = 0.1,
    seed: int = 0,
    include_hair: bool = True,
    foreground: tuple[int, ...] | None = None,
    layout: str = "auto",
    mask_pattern: str | None = None,
    image_pattern: str = "*",
    image_dir: str | None = None,
) -> PrepareReport:
    """Find, validate and summarise the pairs of ``data_root``, split them into folds, write ``out``.

    Args:
        task: one of :data:`TASKS`.
        data_root: the dataset folder, in its published layout.
        out: the datalist JSON to write; ``None`` writes nothing.
        n_folds: k of the grouped k-fold splits; 0 or 1: no folds (official splits only, if any).
        val_fraction, seed: the validation share carved from each training fold, and the seed.
        include_hair: faces: face = skin + hair (else skin only).
        foreground: LUNA16 labels that are foreground (default the lungs, 3 and 4).
        layout, mask_pattern, image_pattern, image_dir: chest X-ray and CT layout and name rule
            (see :func:`medseg.data.cxr_datalist`, :func:`medseg.data.ct_datalist`).

    Raises:
        LayoutError, MissingFileError: from the adapter, when the layout is not recognised.
        ValueError: when no pair is valid (nothing is written then), or the folds cannot be made.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if foreground is not None and task != "luna16":
        raise ValueError("foreground labels apply to the luna16 task only")
    root = Path(data_root).resolve()
    skipped: list[BadPair] = []
    pairs = find_pairs(task, root, skipped, layout, mask_pattern, image_pattern, image_dir)
    checker = _Checker(task, pair_transforms(task, include_hair, foreground))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-pair work is small: worker threads only add wake-up stalls on a busy machine
    try:
        pos_weight: float | None = compute_pos_weight(checker.masks(pairs))
    except ValueError:  # no mask with foreground: every pair was bad
        pos_weight = None
    finally:
        torch.set_num_threads(threads)
    bad = skipped + checker.bad
    if not checker.valid:
        reasons = "; ".join(str(b) for b in bad[:3])
        raise ValueError(f"{root}: no valid {task} pair among {len(pairs) + len(skipped)} found ({reasons})")
    folds = kfold_splits(checker.valid, n_folds, val_fraction, seed) if n_folds >= 2 else []
    datalist = assign_folds(checker.valid, folds) if folds else checker.valid
    splits = Counter(entry["split"] for entry in datalist if "split" in entry)
    summary = {
        "pairs_found": len(pairs) + len(skipped),
        "cases": len(datalist),
        "groups": len({entry.get("patient", entry["case"]) for entry in datalist}),
        "bad_pairs": len(bad),
        "slices": checker.slices,
        "slices_with_foreground": checker.slices_with_foreground,
        "foreground_fraction": checker.foreground / checker.pixels,
        "pos_weight": pos_weight,
        "splits": dict(splits),
    }
    options = {
        "n_folds": n_folds if folds else 0,
        "val_fraction": val_fraction,
        "seed": seed,
        "group_key": "patient",
        **({"include_hair": include_hair} if task in ("lfw", "helen") else {}),
        **({"foreground": list(foreground or LUNA16_FOREGROUND)} if task == "luna16" else {}),
        **({"layout": layout} if task == "cxr" else {}),
        **(
            {"mask_pattern": mask_pattern, "image_pattern": image_pattern, "image_dir": image_dir}
            if task in ("ct", "cxr")
            else {}
        ),
    }
    report = PrepareReport(task, str(root), datalist, bad, summary, folds, options)
    if out is not None:
        report.out = str(write_json_atomic(out, report.to_json()))
    return report


def format_report(report: PrepareReport) -> str:
    """The summary ``medseg prepare`` prints."""
    s = report.summary
    splits = ", ".join(f"{name} {count}" for name, count in s["splits"].items())
    ratio = "n/a" if s["pos_weight"] is None else f"{s['pos_weight']:.3f}"
    lines = [
        f"medseg prepare --task {report.task}: {report.data_root}",
        f"  pairs found          {s['pairs_found']}",
        f"  valid pairs          {s['cases']}" + (f" (official splits: {splits})" if splits else ""),
        f"  bad pairs            {s['bad_pairs']}",
        f"  cases                {s['cases']} in {s['groups']} group(s) by patient (a group never straddles two subsets)",
        f"  slices               {s['slices']} ({s['slices_with_foreground']} with foreground)",
        f"  foreground fraction  {s['foreground_fraction']:.4f} of all pixels",
        f"  neg/pos pixel ratio  {ratio} over masks with foreground (SegCaps' pos_weight; {_REPORTED_RATIOS})",
    ]
    if report.folds:
        o = report.options
        lines.append(
            f"  folds                {len(report.folds)}, grouped by patient, validation {o['val_fraction']:.0%} of each training fold, seed {o['seed']}"
        )
        for fold in report.folds:
            lines.append(
                f"    fold {fold.fold}: train {len(fold.train)}, validation {len(fold.validation)}, test {len(fold.test)}"
            )
    if report.bad_pairs:
        lines.append(f"bad pairs ({len(report.bad_pairs)}), left out:")
        lines += [f"  {bad}" for bad in report.bad_pairs]
    if report.out:
        lines.append(f"wrote {report.out}")
    return "\n".join(lines)
