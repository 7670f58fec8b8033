"""Checks of a bundle's settings before anything is loaded: a bad override fails at once, saying what is valid.

:class:`SettingsError` derives from ``SystemExit``: raised from a config expression, it passes through MONAI's
config parser (which wraps ordinary exceptions in a ``RuntimeError`` with the expression's source), so that
``python -m monai.bundle run ... --loss_name jacard`` ends with exit status 1 and one line saying what was wrong
and what is valid, instead of a traceback. In Python it is caught like any ``SystemExit``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch.distributed as dist

from medseg.engines import WEIGHT_SELECTIONS
from medseg.files import atomic_path
from medseg.losses import LOSSES
from medseg.networks import NETWORKS
from medseg.tasks import get_task

__all__ = [
    "MODEL_SELECTIONS",
    "TRAINED_SETTINGS",
    "SettingsError",
    "check_checkpoint",
    "check_settings",
    "check_trained_settings",
    "save_trained_settings",
]


class SettingsError(SystemExit):
    """A bundle setting that cannot work; the message names the setting, the value and what is valid."""

    def __init__(self, message: str) -> None:
        super().__init__(f"medseg bundle: error: {message}")


def _positive(name: str, value: object, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingsError(f"--{name} must be a positive number, got {value!r}")


#: What training saves as ``models/model.pt``: the network of the best validation Dice (the papers'), or of the
#: last validation (the end of a decaying schedule, the checkpoint nnU-Net keeps); with ``--model_average K``, the
#: mean of the weights of the K best, or of the last K (:class:`medseg.engines.WeightAverageSaver`).
MODEL_SELECTIONS = WEIGHT_SELECTIONS


def check_settings(
    task: str,
    loss_name: str,
    network_name: str,
    dataset_dir: str | None,
    datalist: str | None,
    fold: int = 0,
    epochs: int = 1,
    minutes: float | None = None,
    batch_size: int = 1,
    image_size: int = 1,
    val_interval: int = 1,
    model_selection: str = "best",
    model_average: int = 1,
) -> None:
    """Raise :class:`SettingsError` for an unknown task, loss, network or model selection, a missing dataset or
    datalist, or a number out of range."""
    try:
        get_task(task)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    if loss_name not in LOSSES:
        raise SettingsError(f"unknown --loss_name {loss_name!r}; valid: {', '.join(sorted(LOSSES))}")
    if network_name not in NETWORKS:
        raise SettingsError(f"unknown --network_name {network_name!r}; valid: {', '.join(sorted(NETWORKS))}")
    if datalist is not None:
        if not Path(datalist).is_file():
            raise SettingsError(f"--datalist {datalist}: no such file (write one with `medseg prepare --task {task}`)")
    elif dataset_dir is None or not Path(dataset_dir).is_dir():
        raise SettingsError(
            f"--dataset_dir {dataset_dir}: no such folder; give the {task} dataset folder in its published layout "
            f"(`medseg synth --task {task}` writes a synthetic one), or --datalist from `medseg prepare`"
        )
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
        raise SettingsError(f"--fold must be a fold number (0, 1, ...), got {fold!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("image_size", image_size)):
        _positive(name, value)
    _positive("val_interval", val_interval)
    _positive("minutes", minutes, allow_none=True)
    if model_selection not in MODEL_SELECTIONS:
        raise SettingsError(f"unknown --model_selection {model_selection!r}; valid: {', '.join(MODEL_SELECTIONS)}")
    if isinstance(model_average, bool) or not isinstance(model_average, int) or model_average < 1:
        raise SettingsError(f"--model_average must be a number of networks (1, 2, ...), got {model_average!r}")


def check_checkpoint(path: str | Path, bundle_root: str | Path = ".") -> Path:
    """The trained weights a bundle evaluates or infers with; a missing file says how to get them."""
    path = Path(path)
    if not path.is_file():
        raise SettingsError(
            f"{path}: no trained weights. Train them with `python -m monai.bundle run --config_file "
            f"{Path(bundle_root) / 'configs' / 'train.json'} --dataset_dir DATA` (same --output_dir), "
            "or put a checkpoint (a state dict saved with torch.save) at that path"
        )
    return path


#: The settings a checkpoint depends on, recorded beside it by training (``models/settings.json``).
TRAINED_SETTINGS = ("task", "task_options", "network_name", "network_kwargs", "in_channels", "image_size")


def save_trained_settings(ckpt_dir: str | Path, **settings: Any) -> Path | None:
    """Record what the checkpoints in ``ckpt_dir`` were trained with (main process only), atomically."""
    unknown = set(settings) - set(TRAINED_SETTINGS)
    if unknown:
        raise ValueError(f"not a trained setting: {sorted(unknown)}; expected {TRAINED_SETTINGS}")
    if dist.is_available() and dist.is_initialized() and dist.get_rank() > 0:
        return None
    path = Path(ckpt_dir) / "settings.json"
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(settings, indent=1) + "\n")
    return path


def _flags(name: str, value: Any, trained: Any, network_name: str) -> list[str]:
    """The override flags that set ``name`` back to its ``trained`` value (nested for a network's arguments)."""
    if name == "network_kwargs" and isinstance(value, dict) and isinstance(trained, dict):
        keys = sorted(set(value) | set(trained))
        return [
            f"--network_kwargs#{network_name}#{key} {json.dumps(trained.get(key))}"
            for key in keys
            if value.get(key) != trained.get(key)
        ]
    return [f"--{name} {json.dumps(trained)}"]


def check_trained_settings(ckpt_dir: str | Path, **settings: Any) -> None:
    """Raise :class:`SettingsError` when ``settings`` differ from those the checkpoint was trained with.

    The message gives the exact overrides that match the checkpoint. A checkpoint from elsewhere (no
    ``settings.json`` beside it) is taken as it is.
    """
    path = Path(ckpt_dir) / "settings.json"
    if not path.is_file():
        return
    trained = json.loads(path.read_text())
    network_name = trained.get("network_name", settings.get("network_name"))
    flags = []
    for name, value in settings.items():
        value = json.loads(json.dumps(value))  # tuples as lists, as in the JSON
        if name in trained and value != trained[name]:
            flags += _flags(name, value, trained[name], network_name)
    if flags:
        raise SettingsError(f"{Path(ckpt_dir) / 'model.pt'} was trained with other settings; pass {' '.join(flags)}")
