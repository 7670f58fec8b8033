"""Checks of a bundle's settings before anything is loaded or written: a bad override fails at once, saying what is
valid.

:class:`SettingsError` derives from ``SystemExit``: raised from a config expression, it passes through MONAI's
config parser (which wraps ordinary exceptions in a ``RuntimeError`` with the expression's source), so that
``python -m monai.bundle run ... --loss_name jacard`` ends with exit status 1 and one line saying what was wrong
and what is valid, instead of a traceback. In Python it is caught like any ``SystemExit``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from medseg.engines import WEIGHT_SELECTIONS
from medseg.losses import LOSSES
from medseg.networks import NETWORKS
from medseg.pipeline import ModelSettings
from medseg.tasks import check_sources, get_task

from .schedules import LR_SCHEDULES

__all__ = ["SettingsError", "check_checkpoint", "check_exported", "check_settings"]


class SettingsError(SystemExit):
    """A bundle setting that cannot work; the message names the setting, the value and what is valid."""

    def __init__(self, message: str) -> None:
        super().__init__(f"medseg bundle: error: {message}")


def _positive(name: str, value: object, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingsError(f"--{name} must be a positive number, got {value!r}")


def _count(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SettingsError(f"--{name} must be a whole number of at least {least}, got {value!r}")


def _one_of(name: str, value: object, valid: object) -> None:
    if value not in valid:
        raise SettingsError(f"unknown --{name} {value!r}; valid: {', '.join(sorted(valid))}")


def _check_fold(fold: int, datalist: str | None, official_splits: bool) -> None:
    """A fold the datalist has (an unreadable datalist is left to the subsets' own message)."""
    _count("fold", fold, 0)
    try:
        data = json.loads(Path(datalist).read_text()) if datalist is not None else {}
    except (OSError, ValueError):
        return
    entries = data.get("training") or []
    if official_splits and entries and all("split" in entry for entry in entries):
        return  # the official lists, not the folds
    folds = data.get("folds") or []
    if folds and fold >= len(folds):
        raise SettingsError(f"--fold {fold}: {datalist} has folds 0 to {len(folds) - 1}")


def check_settings(
    *,
    task: str,
    loss_name: str,
    network_name: str,
    dataset_dir: str | list[str] | None,
    datalist: str | None,
    fold: int = 0,
    test_source: str | None = None,
    official_splits: bool = True,
    epochs: int = 1,
    minutes: float | None = None,
    batch_size: int = 1,
    image_size: int = 1,
    val_interval: int = 1,
    lr_schedule: str = "plateau",
    model_selection: str = "best",
    model_average: int = 1,
) -> None:
    """Raise :class:`SettingsError` for an unknown task, loss, network, schedule or model selection, a missing
    dataset or datalist, a fold the datalist does not have, or a number out of range. Training and evaluation call
    it first, before anything is read or written."""
    try:
        get_task(task)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    _one_of("loss_name", loss_name, LOSSES)
    _one_of("network_name", network_name, NETWORKS)
    _one_of("lr_schedule", lr_schedule, LR_SCHEDULES)
    _one_of("model_selection", model_selection, WEIGHT_SELECTIONS)
    if datalist is not None:
        if not Path(datalist).is_file():
            raise SettingsError(f"--datalist {datalist}: no such file (write one with `medseg prepare --task {task}`)")
    else:
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
    _check_fold(fold, datalist, official_splits)
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("image_size", image_size)):
        _positive(name, value)
    _positive("val_interval", val_interval)
    _positive("minutes", minutes, allow_none=True)
    _count("model_average", model_average, 1)


def check_checkpoint(path: str | Path, bundle_root: str | Path = ".", settings: ModelSettings | None = None) -> Path:
    """The trained weights a bundle evaluates or infers with; a missing file says how to get them, and (with
    ``settings``) a checkpoint stamped as another model is refused (:meth:`ModelSettings.check_stamp`)."""
    path = Path(path)
    if path.is_file() and settings is not None:
        try:
            settings.check_stamp(torch.load(path, map_location="cpu", weights_only=True), path)
        except ValueError as error:
            raise SettingsError(str(error)) from None
    if not path.is_file():
        raise SettingsError(
            f"{path}: no trained weights. Train them with `python -m monai.bundle run --config_file "
            "\"['configs/common.json','configs/train.json']\" --dataset_dir DATA` in the bundle folder "
            f"{Path(bundle_root)} (same --output_dir), or put a checkpoint (a state dict saved with torch.save) there"
        )
    return path


def check_exported(
    path: str | Path, checkpoint: str | Path, bundle_root: str | Path = ".", settings: ModelSettings | None = None
) -> Path:
    """The exported network ``configs/inference_onnx.json`` runs: a missing file says how to export it, and one
    exported from other weights than ``checkpoint`` (or stamped as another model) is refused."""
    from medseg.export import ExportError, check_exported_from
    from medseg.inference import CheckpointError, OnnxNetwork

    path = Path(path)
    if not path.is_file():
        raise SettingsError(
            f"{path}: no exported network. Export the trained one with `medseg export --bundle {Path(bundle_root)} "
            f"--format onnx` (same folder as --output_dir)"
        )
    try:
        check_exported_from(OnnxNetwork(path, settings), checkpoint)
    except (CheckpointError, ExportError) as error:
        raise SettingsError(str(error)) from None
    return path
