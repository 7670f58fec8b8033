"""Model files read safely, with the settings they carry, or refused with one line saying why.

:func:`read_state_dict` is the one place medseg reads a state dict (PyTorch's safe loader; weights stored in half
precision, as shipped models keep them, are given back in single precision); :func:`load_weights` loads it into its
network; :func:`model_settings` gives the settings a model file (a checkpoint or an ONNX
export) carries, which is all a trained model needs to be applied. :class:`CheckpointError` is what a model file
that cannot be the model its record describes raises, for ONNX files too (:class:`medseg.inference.OnnxModelError`).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from medseg.pipeline import SETTINGS_FILE, STAMP_KEY, ModelSettings, SettingsFileError, checkpoint_stamp

__all__ = [
    "HALF_DTYPES",
    "CheckpointError",
    "load_weights",
    "model_settings",
    "read_stamp",
    "read_state_dict",
    "recorded_settings",
]


#: Floating-point types a checkpoint may store its weights in to be smaller; read back as ``float32``.
HALF_DTYPES = (torch.float16, torch.bfloat16)


class CheckpointError(ValueError):
    """A checkpoint that is not the weights of the network its record describes; the message names the file."""


def read_state_dict(checkpoint: str | Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.save``, read with PyTorch's safe loader (``weights_only=True``: a checkpoint
    that holds code is refused, never run). Tensors stored in half precision (``float16``, ``bfloat16``: a shipped
    model's weights, :func:`medseg.export.half_precision_checkpoint`) are given back as ``float32``, the precision
    the networks compute in; the state dict's metadata (the settings stamp) is kept.

    Raises:
        CheckpointError: for a file that is not a PyTorch checkpoint, one holding Python objects beyond tensors, or a
            training state (``last_state.pt``) instead of the network's weights; one line naming the file.
    """
    path = Path(checkpoint)
    try:
        with open(path, "rb") as stream:
            magic = stream.read(4)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror})") from None
    if not (magic.startswith(b"PK") or magic[:1] == b"\x80"):  # torch.save's zip archive, or a legacy pickle
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (it begins with {magic!r}, not a torch.save file)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower():
            raise CheckpointError(
                f"{path}: holds Python objects beyond tensors, which the safe loader does not run: not a state dict"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({str(error).splitlines()[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({first})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(value) for value in state.values()):
        keys = ", ".join(list(state)[:5]) if isinstance(state, dict) else type(state).__name__
        what = "a training state" if isinstance(state, dict) and "model" in state else "not a state dict of tensors"
        raise CheckpointError(f"{path}: {what} ({keys}), not the network's weights (models/model.pt)")
    for name, value in state.items():  # in place: the OrderedDict's ``_metadata`` (the stamp) stays
        if value.dtype in HALF_DTYPES:
            state[name] = value.float()
    return state


def load_weights(
    network: torch.nn.Module,
    checkpoint: str | Path,
    device: torch.device | str = "cpu",
    settings: ModelSettings | None = None,
) -> None:
    """Load a state dict saved with ``torch.save`` into ``network`` (:func:`read_state_dict`).

    Raises:
        CheckpointError: for a file :func:`read_state_dict` refuses, weights of another network, or (with
            ``settings``) a checkpoint stamped as another model than ``settings`` describe; one line naming the
            file and what it is.
    """
    state = read_state_dict(checkpoint, device)
    if settings is not None:
        try:
            settings.check_stamp(state, checkpoint)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"{checkpoint}: the weights do not fit the network its settings describe ({type(network).__name__}): "
            + " ".join(str(error).split())[:300]
        ) from None


def read_stamp(model_file: str | Path) -> dict[str, Any] | None:
    """The settings stamp a model file carries (:meth:`ModelSettings.stamp`): a checkpoint's (its state dict's
    metadata) or an ONNX export's (a metadata property); ``None`` for a file without one.

    Raises:
        CheckpointError: for a file that is neither a PyTorch checkpoint nor an ONNX model.
    """
    path = Path(model_file)
    if path.suffix != ".onnx":
        return checkpoint_stamp(read_state_dict(path))
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except ImportError:
        raise ImportError("ONNX is not installed: pip install -e '.[onnx]' (medseg's onnx extra)") from None
    except Exception as error:  # protobuf's DecodeError, OSError, ...
        raise CheckpointError(
            f"{path}: not an ONNX model ({str(error).strip()[:200] or type(error).__name__})"
        ) from None
    text = {entry.key: entry.value for entry in model.metadata_props}.get(STAMP_KEY)
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its {STAMP_KEY} metadata is not JSON (altered?)") from None


def recorded_settings(model_file: str | Path) -> ModelSettings | None:
    """The settings recorded for the model in ``model_file`` (a checkpoint or an ONNX export), or ``None``.

    The record the file carries comes first (every checkpoint and export medseg writes carries one); a file without
    one (a state dict from elsewhere), or not written yet, takes the ``settings.json`` beside it. A ``settings.json``
    beside a file that carries another model's record is refused: a model file and its record belong together.

    Raises:
        SettingsFileError: for a bad record, or two that disagree; :class:`CheckpointError` for a file that is not
            a model file.
    """
    path = Path(model_file)
    stamp = read_stamp(path) if path.exists() else None
    settings = ModelSettings.from_stamp(stamp, path) if stamp else None
    beside = path.parent / SETTINGS_FILE
    if beside.is_file():
        written = ModelSettings.read(path.parent)
        written.check_recorded_stamp(stamp, path)
        settings = settings or written
    return settings


def model_settings(model_file: str | Path, **given: Any) -> ModelSettings:
    """:func:`recorded_settings` with what is ``given`` (:meth:`ModelSettings.with_given`).

    Raises:
        SettingsFileError: for no record, a bad one, two that disagree, or a given model field that contradicts the
            record; :class:`CheckpointError` for a file that is not a model file.
    """
    settings = recorded_settings(model_file)
    if settings is None:
        raise SettingsFileError(
            f"{model_file}: no settings recorded in it or beside it ({SETTINGS_FILE}); medseg's training records them"
        )
    return settings.with_given(model_file, **given)
