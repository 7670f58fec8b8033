"""A bundle run and the record of its trained model (:class:`medseg.pipeline.ModelSettings`).

Training writes the record beside its checkpoints (``models/settings.json``) once its settings are checked, and
into every checkpoint it saves; evaluation checks that the bundle's settings still describe the checkpoint and,
when they do not, says which overrides match it; inference applies the model with the record its file carries
(what ``medseg infer`` does too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch.distributed as dist

from medseg.inference import model_settings
from medseg.pipeline import SETTINGS_FILE, ModelSettings, SettingsError

__all__ = ["check_trained", "record_settings", "trained_settings"]

#: The recorded fields a bundle sets (``in_channels`` and ``intensity`` follow from the task and its options).
_OVERRIDABLE = ("task", "task_options", "network_name", "network_kwargs", "spatial_size")


def record_settings(settings: ModelSettings, ckpt_dir: str | Path) -> Path | None:
    """Write ``ckpt_dir/settings.json`` (main process only); return its path."""
    if dist.is_available() and dist.is_initialized() and dist.get_rank() > 0:
        return None
    return settings.save(ckpt_dir)


def _flags(name: str, value: object, trained: object) -> list[str]:
    """The override flags that set ``name`` back to its ``trained`` value (nested for a network's arguments)."""
    if name == "network_kwargs" and isinstance(value, dict) and isinstance(trained, dict):
        keys = sorted(set(value) | set(trained))
        return [
            f"--network_kwargs#{key} {json.dumps(trained.get(key))}"
            for key in keys
            if value.get(key) != trained.get(key)
        ]
    return [f"--{name} {json.dumps(trained).replace(' ', '')}"]


def check_trained(settings: ModelSettings, ckpt_path: str | Path) -> None:
    """Raise :class:`SettingsError` when ``settings`` describe another model than the one trained at ``ckpt_path``
    (the record the checkpoint carries, or before the first checkpoint the ``settings.json`` training wrote beside
    it); the message gives the exact overrides that match it. A checkpoint without a record (from elsewhere) is
    taken as the settings describe it."""
    path = Path(ckpt_path)
    if path.is_file():
        trained = model_settings(path)
    elif (path.parent / SETTINGS_FILE).is_file():
        trained = ModelSettings.read(path.parent)
    else:
        return
    flags = [
        flag
        for name, (mine, old) in settings.differences(trained, names=_OVERRIDABLE).items()
        for flag in _flags(name, mine, old)
    ]
    if flags:
        raise SettingsError(f"{path} was trained with other settings; pass {' '.join(flags)}")


def trained_settings(*, ckpt_path: str | Path, given: Mapping[str, Any] | None = None) -> ModelSettings:
    """The record of the model in ``ckpt_path`` (a checkpoint or an ONNX export: the record it carries, else the
    ``settings.json`` beside it), with the overrides ``given`` (``None`` values: as trained).

    Test-time flips and shifts, threshold and mask cleaning may be overridden; a setting the checkpoint depends on
    (task, network, size) that contradicts the record is an error (:meth:`ModelSettings.with_given`).

    Raises:
        SettingsError: for a missing or bad record, or a contradicting override; the message names the file.
    """
    return model_settings(ckpt_path, **dict(given or {}))
