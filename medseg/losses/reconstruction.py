"""SegCaps' composite loss: segmentation loss plus weighted reconstruction error of the masked image."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

__all__ = ["SegCapsLoss"]


class SegCapsLoss(_Loss):
    """``L = segmentation_loss(seg, label) + recon_weight · MSE(reconstruction, image · label)``.

    LaLonde & Bagci (2018) train SegCaps on a segmentation loss plus the mean squared error between the
    reconstruction branch's output and the input image masked by the ground truth, weighted by
    ``recon_weight`` (131.072 in their release; van Beers et al. used 100 with the IoU loss).

    The loss sees only tensors, in the layout that SegCaps returns for ``forward(x, y)`` and that
    :class:`medseg.engines.capsule.PrepareBatchSegCaps` builds:

    - ``input``: ``(B, 1 + C, H, W)``, channel 0 the segmentation (capsule lengths, probabilities),
      channels 1… the reconstruction of the ``C`` image channels;
    - ``target``: ``(B, 1 + C, H, W)``, channel 0 the binary label, channels 1… the image.

    Args:
        segmentation_loss: loss applied to ``(segmentation, label)``; it receives probabilities, e.g.
            ``torch.nn.BCELoss()`` or ``monai.losses.DiceLoss()`` (no sigmoid).
        recon_weight: weight of the reconstruction term.
    """

    def __init__(
        self, segmentation_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], recon_weight: float = 131.072
    ) -> None:
        super().__init__()
        if recon_weight < 0:
            raise ValueError(f"recon_weight must be non-negative, got {recon_weight}")
        self.segmentation_loss, self.recon_weight = segmentation_loss, recon_weight

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.shape != target.shape:
            raise ValueError(
                f"input and target must have the same shape, got {tuple(input.shape)} and {tuple(target.shape)}"
            )
        if input.ndim < 3 or input.shape[1] < 2:
            raise ValueError(
                f"expected (batch, 1 + image channels, spatial...) with the segmentation in channel 0 "
                f"and the reconstruction after it, got shape {tuple(input.shape)}"
            )
        segmentation, reconstruction = input[:, :1], input[:, 1:]
        label, image = target[:, :1], target[:, 1:]
        segmentation_term = self.segmentation_loss(segmentation, label)
        return segmentation_term + self.recon_weight * F.mse_loss(reconstruction, image * label)
