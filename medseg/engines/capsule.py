"""What MONAI's ``SupervisedTrainer`` needs to train SegCaps with its reconstruction branch.

SegCaps reconstructs the input masked by the ground truth during training, so the label is also a network
input, and its loss needs the image as well as the label. :class:`PrepareBatchSegCaps` (a MONAI
``PrepareBatch``, like :class:`monai.engines.utils.PrepareBatchExtraInput`) returns
``(image, cat([label, image]), (label,), {})``: the trainer then calls ``network(image, label)``, which
returns ``cat([segmentation, reconstruction])``, and ``SegCapsLoss(pred, cat([label, image]))``.

Validation and inference use MONAI's default ``prepare_batch`` (the label is never a network input):
``network(image)`` returns the segmentation, capsule lengths in [0, 1), which
:func:`medseg.transforms.binary_postprocessing` with ``network_output="probabilities"`` thresholds without a
sigmoid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.engines import default_prepare_batch
from monai.engines.utils import PrepareBatch
from torch import nn

from .utils import unwrap_module

__all__ = ["PrepareBatchSegCaps", "has_reconstruction", "training_prepare_batch"]


class PrepareBatchSegCaps(PrepareBatch):
    """``prepare_batch`` for training SegCaps with reconstruction: the label goes to the network and the loss.

    Returns ``(image, cat([label, image], dim=1), (label,), {})`` for a dictionary batch with ``image`` and
    ``label`` (``label`` one channel).
    """

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor] | torch.Tensor | Sequence[torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor], dict]:
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        if label is None:
            raise ValueError("PrepareBatchSegCaps needs a label in every batch: the reconstruction is masked by it")
        if label.shape[1] != 1 or label.shape[0] != image.shape[0] or label.shape[2:] != image.shape[2:]:
            raise ValueError(
                f"label must have shape {(image.shape[0], 1, *image.shape[2:])} for image "
                f"{tuple(image.shape)}, got {tuple(label.shape)}"
            )
        label = label.to(image.dtype)
        return image, torch.cat([label, image], dim=1), (label,), {}


def has_reconstruction(network: nn.Module) -> bool:
    """Whether the network (SegCaps) reconstructs its input, and so trains with image and label as inputs."""
    return getattr(unwrap_module(network), "reconstruction", None) is not None


def training_prepare_batch(network: nn.Module) -> PrepareBatch | Any:
    """The trainer's batch preparation: :class:`PrepareBatchSegCaps` when the network reconstructs (SegCaps),
    else MONAI's default."""
    return PrepareBatchSegCaps() if has_reconstruction(network) else default_prepare_batch
