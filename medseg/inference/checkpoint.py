"""A PyTorch checkpoint loaded into its network with PyTorch's safe loader, or refused with one line saying why.

:func:`load_weights` is the one place medseg reads a state dict for inference (``medseg infer``, the model card's
golden cases, the ONNX export's check); :class:`CheckpointError` is what a model file that cannot be the model its
record describes raises, for ONNX files too (:class:`medseg.inference.OnnxModelError`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from medseg.pipeline import ModelSettings

__all__ = ["CheckpointError", "load_weights"]


class CheckpointError(ValueError):
    """A checkpoint that is not the weights of the network its record describes; the message names the file."""


def load_weights(
    network: torch.nn.Module,
    checkpoint: str | Path,
    device: torch.device | str = "cpu",
    settings: ModelSettings | None = None,
) -> None:
    """Load a state dict saved with ``torch.save`` into ``network`` with PyTorch's safe loader
    (``weights_only=True``: a checkpoint that holds code is refused, never run).

    Raises:
        CheckpointError: for a file that is not a PyTorch checkpoint, one holding Python objects beyond tensors, a
            training state (``last_state.pt``) instead of the network's weights, weights of another network, or (with
            ``settings``) a checkpoint stamped as another model than ``settings`` describe; one line naming the file
            and what it is.
    """
    import pickle
    import zipfile

    path = Path(checkpoint)
    with open(path, "rb") as stream:
        magic = stream.read(4)
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
    if settings is not None:
        try:
            settings.check_stamp(state, path)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: the weights do not fit the network its settings describe ({type(network).__name__}): "
            + " ".join(str(error).split())[:300]
        ) from None
