"""The train, validation and test entries a bundle run uses, from a datalist or from the dataset folder; and the
images a bundle's ``inference.json`` segments.

- With ``--datalist`` (a ``medseg prepare`` JSON), the subsets of ``--fold`` are read from it.
- Without, the bundle prepares the datalist of ``--dataset_dir`` (a folder, or a list of folders: several sources;
  :func:`medseg.tasks.prepare_datalist`: the task's adapter, every pair validated, grouped k-fold splits, or with
  ``--test_source`` one fold that tests on that source) and keeps it as ``<output_dir>/datalist.json``; a later run
  with the same folder and options (``--resume`` above all) reuses it, so that it trains on the same split.
- When the entries carry official splits (LFW Part Labels' lists), those are used instead of the folds
  (:func:`medseg.data.official_subsets`), unless ``official_splits`` is off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch.distributed as dist

from medseg.data import SUBSETS, LayoutError, MissingFileError, fold_datalists, official_subsets
from medseg.inference import InputError, find_cases, unique_names
from medseg.pipeline import SettingsError, check_flag
from medseg.tasks import check_sources, format_report, get_task, prepare_datalist

__all__ = ["case_name_formatter", "inference_entries", "load_subsets", "prepared_datalist"]

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
    task: str,
    dataset_dir: str | Path | list,
    output_dir: str | Path,
    seed: int = 0,
    test_source: str | None = None,
    folds: int = 4,
    val_fraction: float = 0.1,
    **options: Any,
) -> Path:
    """``<output_dir>/datalist.json`` for ``dataset_dir`` (a folder, or a list of folders: several sources),
    prepared unless it already matches: ``folds`` grouped folds (1: one fold without a test subset), or the one fold
    of ``test_source``, each training fold giving ``val_fraction`` of its patients to validation."""
    path = Path(output_dir) / "datalist.json"
    roots = [dataset_dir] if isinstance(dataset_dir, (str, Path)) else list(dataset_dir)
    root = str(Path(roots[0]).resolve()) if len(roots) == 1 else [str(Path(r).resolve()) for r in roots]
    wanted = get_task(task).resolve_options(("pairs", "label"), **options)
    wanted = {name: list(value) if isinstance(value, tuple) else value for name, value in wanted.items()}
    wanted["seed"], wanted["test_source"], wanted["n_folds"] = seed, test_source, 1 if test_source else folds
    wanted["val_fraction"] = val_fraction
    if path.is_file():
        earlier = json.loads(path.read_text())
        recorded = earlier.get("options", {})
        if earlier.get("task") == task and earlier.get("data_root") == root:
            if all(recorded.get(name) == value for name, value in wanted.items()):
                return path
    try:
        report = prepare_datalist(
            task, root, path, n_folds=folds, val_fraction=val_fraction, seed=seed, test_source=test_source, **options
        )
    except (LayoutError, MissingFileError, ValueError) as error:
        raise SettingsError(f"--dataset_dir {dataset_dir}: {error}") from None
    print(format_report(report))
    return path


def load_subsets(
    *,
    task: str,
    dataset_dir: str | Path | None,
    datalist: str | Path | None,
    fold: int,
    output_dir: str | Path,
    seed: int = 0,
    task_options: Mapping[str, Any] | None = None,
    official_splits: bool = True,
    require_training: bool = True,
    test_source: str | None = None,
    folds: int = 4,
    val_fraction: float = 0.1,
    evaluate: str | None = None,
) -> dict[str, list[dict]]:
    """``{"train", "validation", "test", "all"}`` entries for a bundle run (see the module docstring).

    ``folds``: the number of folds of a dataset folder's datalist (1: one fold without a test subset, a model to
    use). ``require_training=False`` (evaluation) accepts a datalist without folds or splits: its entries are then
    all in ``"all"``. ``official_splits=False`` uses the folds even when the entries carry official splits
    (cross-validation over all the data, as the loss comparisons of the papers do). ``test_source`` (with
    ``dataset_dir`` a list of folders) tests on that source and trains on the others. ``val_fraction``: the share of
    a training fold's patients that validates; 0 trains on all of them and validates on the training cases (a model
    to use from a handful of scans, whose validation figures then measure the fit, not unseen cases). ``evaluate``:
    the subset an evaluation runs on, which must not be empty.

    Raises:
        SettingsError: for a datalist or dataset folder that does not exist, a test source that is none of the
            folders, a datalist without entries, without the fold, or (``require_training``) with an empty training
            or validation subset, or an empty ``evaluate`` subset, and for a dataset folder that cannot be prepared.
    """
    options = dict(task_options or {})
    check_flag("official_splits", official_splits)
    _check_data(task, dataset_dir, datalist, test_source)
    if datalist is None:
        datalist = _main_process_first(
            lambda: prepared_datalist(task, dataset_dir, output_dir, seed, test_source, folds, val_fraction, **options)
        )
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
    if val_fraction == 0 and subsets["train"] and not subsets["validation"]:
        subsets["validation"] = list(subsets["train"])
        count = len(subsets["train"])
        print(f"--val_fraction 0: no case held out for validation; validation scores the {count} training cases")
    for subset in ("train", "validation") if require_training else ():
        if not subsets[subset]:
            raise SettingsError(f"--datalist {datalist}: the {subset} subset of fold {fold} is empty")
    if evaluate is not None and evaluate != "all" and not subsets.get(evaluate):
        valid = ", ".join(name for name in (*SUBSETS, "all") if name != evaluate)
        raise SettingsError(
            f"--datalist {datalist}: the {evaluate} subset of fold {fold} is empty, nothing to evaluate "
            f"(--evaluate_subset: {valid})"
        )
    return {**subsets, "all": entries}


def _check_data(
    task: str, dataset_dir: str | Path | list | None, datalist: str | Path | None, test_source: str | None
) -> None:
    """Raise :class:`SettingsError` for a datalist or dataset folder that does not exist, or a test source that is
    none of the folders, before anything is read."""
    if datalist is not None:
        if not Path(datalist).is_file():
            raise SettingsError(f"--datalist {datalist}: no such file (write one with `medseg prepare --task {task}`)")
        return
    folders = [dataset_dir] if dataset_dir is None or isinstance(dataset_dir, (str, Path)) else list(dataset_dir)
    for folder in folders:
        if folder is None or not Path(folder).is_dir():
            raise SettingsError(
                f"--dataset_dir {folder}: no such folder; give the {task} dataset folder in its published layout "
                f"(`medseg synth --task {task}` writes a synthetic one), or --datalist from `medseg prepare`"
            )
    if test_source is not None:
        try:
            check_sources(folders, test_source)
        except ValueError as error:
            raise SettingsError(f"--test_source {test_source}: {error}") from None


def inference_entries(
    *, task: str, input_dir: str | Path | None = None, datalist: str | Path | None = None
) -> list[dict]:
    """``[{"image": path}, ...]`` to predict: every entry of ``datalist``, or the inputs found in ``input_dir``.

    ``input_dir`` is found as ``medseg infer --input`` finds its inputs (:func:`medseg.inference.find_cases`): one
    image file, or a folder of images (PNG, JPEG, DICOM for 2D tasks; NIfTI, NRRD, MHA/MHD and DICOM series folders
    for volumes), in name order.
    """
    if datalist is not None:
        entries = json.loads(Path(datalist).read_text()).get("training") or []
        return [{"image": entry["image"]} for entry in entries]
    if input_dir is None:
        raise SettingsError("--input_dir: give images to predict, or --datalist")
    try:
        cases = find_cases([input_dir], volumetric=get_task(task).volumetric)
    except InputError as error:
        raise SettingsError(f"--input_dir {error}") from None
    readable = [case for case in cases if case.kind != "unknown"]
    if not readable:
        raise SettingsError(f"--input_dir {input_dir}: no image or DICOM series in it")
    return [{"image": str(case.path)} for case in readable]


def case_name_formatter(entries: list[dict]) -> Callable[[dict, Any], dict]:
    """An ``output_name_formatter`` for MONAI's ``SaveImaged``: each entry's output is named as ``medseg infer`` names
    its case (:func:`medseg.inference.unique_names`), so that inputs sharing a file name in different folders do not
    overwrite each other's masks (MONAI names an output after its input's file name alone)."""
    from monai.data.folder_layout import default_name_formatter

    paths = [Path(entry["image"]) for entry in entries]
    names = {os.path.abspath(path): name for path, name in zip(paths, unique_names(paths))}

    def formatter(metadict: dict, saver: Any) -> dict:
        source = (metadict or {}).get("filename_or_obj")
        name = names.get(os.path.abspath(str(source))) if source else None
        return {"subject": name, "idx": None} if name else default_name_formatter(metadict, saver)

    return formatter
