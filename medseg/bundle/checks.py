"""Checks of a bundle run's own training settings, and of the model files it reads, before anything is loaded or
written: a bad override fails at once, saying what is valid.

Each setting is checked in one place: the model's (task, network, loss, spatial size, threshold) by
:class:`medseg.pipeline.ModelSettings`, the data's (dataset folder, datalist, fold, test source) by
:func:`medseg.bundle.load_subsets`, the training run's here (:func:`check_training`). Every check raises
:class:`medseg.pipeline.SettingsError`, which a bundle run reports in one line
(:func:`medseg.bundle.report_errors_in_one_line`).
"""

from __future__ import annotations

from pathlib import Path

from medseg.engines import WEIGHT_SELECTIONS
from medseg.pipeline import ModelSettings, SettingsError, check_flag

from .schedules import LR_SCHEDULES

__all__ = ["check_checkpoint", "check_exported", "check_training"]


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


def check_training(
    *,
    epochs: int,
    minutes: float | None,
    batch_size: int,
    val_interval: int,
    lr_schedule: str,
    model_selection: str,
    model_average: int,
    val_fraction: float = 0.1,
    resume: bool = False,
) -> None:
    """Raise :class:`SettingsError` for a training budget, batch size, validation interval or validation share out
    of range, an unknown schedule or model selection, a model selected by its fit (``model_selection`` best without
    a validation case: ``val_fraction`` 0), or ``resume`` not True or False."""
    _count("epochs", epochs, 1)
    _positive("minutes", minutes, allow_none=True)
    _count("batch_size", batch_size, 1)
    _count("val_interval", val_interval, 1)
    _one_of("lr_schedule", lr_schedule, LR_SCHEDULES)
    _one_of("model_selection", model_selection, WEIGHT_SELECTIONS)
    _count("model_average", model_average, 1)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise SettingsError(f"--val_fraction must be a number in [0, 1) (the validation share), got {val_fraction!r}")
    if val_fraction == 0 and model_selection == "best":
        raise SettingsError(
            "--val_fraction 0 validates on the training cases: --model_selection best would pick the weights by their "
            "fit; give --model_selection last, or a validation share above 0"
        )
    check_flag("resume", resume)


def check_checkpoint(path: str | Path, bundle_root: str | Path = ".", settings: ModelSettings | None = None) -> Path:
    """The trained weights a bundle evaluates or infers with; a missing file says how to get them, and (with
    ``settings``) a checkpoint stamped as another model is refused."""
    from medseg.inference import read_state_dict

    path = Path(path)
    if not path.is_file():
        raise SettingsError(
            f"{path}: no trained weights. Train them with `python -m monai.bundle run --config_file "
            f"configs/train.json --dataset_dir DATA` in the bundle folder {Path(bundle_root)} (same --output_dir), "
            "or put a checkpoint there (a state dict saved with torch.save)"
        )
    if settings is not None:
        settings.check_stamp(read_state_dict(path), path)
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
            f"{path}: no exported network. Export the trained one with `medseg export --model-dir "
            f"{Path(bundle_root)} --format onnx` (same folder as --output_dir)"
        )
    try:
        check_exported_from(OnnxNetwork(path, settings), checkpoint)
    except (CheckpointError, ExportError) as error:
        raise SettingsError(str(error)) from None
    return path
