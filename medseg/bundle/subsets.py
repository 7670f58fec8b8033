"""The train, validation and test entries a bundle run uses, from a datalist or from the dataset folder.

- With ``--datalist`` (a ``medseg prepare`` JSON), the subsets of ``--fold`` are read from it.
- Without, the bundle runs ``medseg prepare`` on ``--dataset_dir`` (the task's adapter, every pair validated,
  grouped k-fold splits) and keeps the result as ``<output_dir>/datalist.json``; a later run with the same
  folder and options (``--resume`` above all) reuses it, so that it trains on the same split.
- When the entries carry official splits (LFW Part Labels' lists), those are used instead of the folds: the
  official train, validation and test lists; without a test list (the ``lfw_parts`` subset has only the train
  and validation lists), the official validation list becomes the test set and 10 % of the training people
  are carved out for validation.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch.distributed as dist

from medseg.apps.prepare import format_report, prepare_datalist
from medseg.data import LayoutError, MissingFileError, carve_validation, fold_datalists
from medseg.data.layout import IMAGE_SUFFIXES_2D, VOLUME_SUFFIXES, is_dicom_series, split_suffix
from medseg.tasks import get_task

from .settings import SettingsError

__all__ = ["SUBSETS", "inference_entries", "load_subsets", "official_subsets", "prepared_datalist"]

#: The subsets of a bundle run.
SUBSETS = ("train", "validation", "test")

T = TypeVar("T")


def _main_process_first(work: Callable[[], T]) -> T:
    """Run ``work`` on rank 0 before the other ranks (which then reuse what it wrote); plainly when not distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return work()
    if dist.get_rank() == 0:
        result = work()
        dist.barrier()
        return result
    dist.barrier()
    return work()


def prepared_datalist(
    task: str, dataset_dir: str | Path, output_dir: str | Path, seed: int = 0, n_folds: int = 4, **options: Any
) -> Path:
    """``<output_dir>/datalist.json`` for ``dataset_dir``, written by ``medseg prepare`` unless it already matches."""
    path = Path(output_dir) / "datalist.json"
    root = str(Path(dataset_dir).resolve())
    wanted = get_task(task).resolve_options(("pairs", "label"), **options)
    wanted = {name: list(value) if isinstance(value, tuple) else value for name, value in wanted.items()}
    wanted["seed"] = seed
    if path.is_file():
        earlier = json.loads(path.read_text())
        recorded = earlier.get("options", {})
        if earlier.get("task") == task and earlier.get("data_root") == root:
            if all(recorded.get(name) == value for name, value in wanted.items()):
                return path
    try:
        report = prepare_datalist(task, root, path, n_folds=n_folds, seed=seed, **options)
    except (LayoutError, MissingFileError, ValueError) as error:
        raise SettingsError(f"--dataset_dir {dataset_dir}: {error}") from None
    print(format_report(report))
    return path


def official_subsets(entries: list[dict], val_fraction: float = 0.1, seed: int = 0) -> dict[str, list[dict]]:
    """The subsets of the official split lists (see the module docstring)."""
    by_split: dict[str, list[dict]] = defaultdict(list)
    for entry in entries:
        by_split[entry["split"]].append(entry)
    if by_split["test"]:
        return {subset: by_split[subset] for subset in SUBSETS}
    train, validation = carve_validation(by_split["train"], val_fraction, seed)
    return {"train": train, "validation": validation, "test": by_split["validation"]}


def load_subsets(
    task: str,
    dataset_dir: str | Path | None,
    datalist: str | Path | None,
    fold: int,
    output_dir: str | Path,
    seed: int = 0,
    require_training: bool = True,
    official_splits: bool = True,
    **options: Any,
) -> dict[str, list[dict]]:
    """``{"train", "validation", "test", "all"}`` entries for a bundle run (see the module docstring).

    ``require_training=False`` (evaluation, inference) accepts a datalist without folds or splits: its entries
    are then all in ``"all"``. ``official_splits=False`` uses the folds even when the entries carry official
    splits (cross-validation over all the data, as the loss comparisons of the papers do).

    Raises:
        SettingsError: for a datalist without entries, without the fold, or (``require_training``) with an
            empty training or validation subset, and for a dataset folder ``medseg prepare`` cannot use.
    """
    if datalist is None:
        datalist = _main_process_first(lambda: prepared_datalist(task, dataset_dir, output_dir, seed, **options))
    data = json.loads(Path(datalist).read_text())
    entries = data.get("training") or []
    if not entries:
        raise SettingsError(f"--datalist {datalist}: no entries under 'training' (is it a medseg prepare datalist?)")
    if official_splits and all("split" in entry for entry in entries):
        subsets = official_subsets(entries, seed=seed)
    elif data.get("folds"):
        if fold >= len(data["folds"]):
            raise SettingsError(f"--fold {fold}: {datalist} has folds 0 to {len(data['folds']) - 1}")
        subsets = fold_datalists(data, fold)
    elif require_training:
        raise SettingsError(
            f"--datalist {datalist}: no folds and no official splits; write it with medseg prepare --folds 4"
        )
    else:
        subsets = {subset: [] for subset in SUBSETS}
    for subset in ("train", "validation") if require_training else ():
        if not subsets[subset]:
            raise SettingsError(f"--datalist {datalist}: the {subset} subset of fold {fold} is empty")
    return {**subsets, "all": entries}


def inference_entries(task: str, input_dir: str | Path | None = None, datalist: str | Path | None = None) -> list[dict]:
    """``[{"image": path}, ...]`` to predict: every entry of ``datalist``, or the images in ``input_dir``.

    ``input_dir`` may be one image file, or a folder whose image files (the task's kinds: PNG, JPEG, DICOM for
    2D tasks; NIfTI, NRRD, MHA/MHD and DICOM series folders for volumes) are taken in name order.
    """
    if datalist is not None:
        entries = json.loads(Path(datalist).read_text()).get("training") or []
        return [{"image": entry["image"]} for entry in entries]
    if input_dir is None or not Path(input_dir).exists():
        raise SettingsError(f"--input_dir {input_dir}: no such file or folder; give images to predict, or --datalist")
    root = Path(input_dir)
    volumetric = get_task(task).volumetric
    suffixes = VOLUME_SUFFIXES if volumetric else IMAGE_SUFFIXES_2D
    if root.is_file():
        return [{"image": str(root)}]
    images = [
        path
        for path in sorted(root.iterdir())
        if (path.is_file() and split_suffix(path.name, suffixes)[1]) or (volumetric and is_dicom_series(path))
    ]
    if not images:
        raise SettingsError(f"--input_dir {input_dir}: no image ({', '.join(suffixes)}) in it")
    return [{"image": str(path)} for path in images]
