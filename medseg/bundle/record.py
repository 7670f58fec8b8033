"""A bundle run and the record of its trained model (``models/settings.json``, :class:`medseg.pipeline.ModelSettings`).

Training writes the record once its settings are checked, before the first checkpoint; evaluation checks that the
bundle's settings still describe the checkpoint and, when they do not, says which overrides match it; inference
applies the model with its record (what ``medseg infer`` does too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch.distributed as dist

from medseg.pipeline import SETTINGS_FILE, ModelSettings, SettingsFileError

from .checks import SettingsError

__all__ = ["check_trained", "record_settings", "trained_settings"]

#: The recorded fields a bundle sets (``in_channels`` and ``intensity`` follow from the task and its options).
_OVERRIDABLE = ("task", "task_options", "network_name", "network_kwargs", "spatial_size")


def record_settings(settings: ModelSettings, ckpt_dir: str | Path) -> Path | None:
    """Write ``ckpt_dir/settings.json`` (main process only); return its path."""
    if dist.is_available() and dist.is_initialized() and dist.get_rank() > 0:
        return None
    return settings.save(ckpt_dir)


def _flags(name: str, value: object, trained: object, network_name: str) -> list[str]:
    """The override flags that set ``name`` back to its ``trained`` value (nested for a network's arguments)."""
    if name == "spatial_size":
        height, width = trained
        return [f"--image_size {height}"] if height == width else [f"--spatial_size {json.dumps(trained)}"]
    if name == "network_kwargs" and isinstance(value, dict) and isinstance(trained, dict):
        keys = sorted(set(value) | set(trained))
        return [
            f"--network_kwargs#{network_name}#{key} {json.dumps(trained.get(key))}"
            for key in keys
            if value.get(key) != trained.get(key)
        ]
    return [f"--{name} {json.dumps(trained)}"]


def check_trained(settings: ModelSettings, ckpt_dir: str | Path) -> None:
    """Raise :class:`SettingsError` when ``settings`` describe another model than the one trained in ``ckpt_dir``;
    the message gives the exact overrides that match the checkpoint. A checkpoint without a record (from elsewhere)
    is taken as the settings describe it."""
    if not (Path(ckpt_dir) / SETTINGS_FILE).is_file():
        return
    try:
        trained = ModelSettings.read(ckpt_dir)
    except SettingsFileError as error:
        raise SettingsError(str(error)) from None
    flags = [
        flag
        for name, (mine, old) in settings.differences(trained, names=_OVERRIDABLE).items()
        for flag in _flags(name, mine, old, trained.network_name)
    ]
    if flags:
        raise SettingsError(f"{Path(ckpt_dir) / 'model.pt'} was trained with other settings; pass {' '.join(flags)}")


def trained_settings(ckpt_dir: str | Path, given: Mapping[str, Any] | None = None) -> ModelSettings:
    """The record of the model trained in ``ckpt_dir``, with the overrides ``given`` (``None``: as trained).

    Test-time flips and shifts, threshold and mask cleaning may be overridden; a setting the checkpoint depends on
    (task, network, size) that contradicts the record is an error (:meth:`medseg.pipeline.ModelSettings.load`).

    Raises:
        SettingsError: for a missing or bad record, or a contradicting override; the message names the file.
    """
    try:
        return ModelSettings.load(ckpt_dir, **dict(given or {}))
    except (SettingsFileError, ValueError) as error:
        raise SettingsError(str(error)) from None
