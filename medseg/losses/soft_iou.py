"""Soft IoU loss (Rahman & Wang 2016)."""

from __future__ import annotations

import torch

from .base import RegionLoss

__all__ = ["SoftIoULoss"]


class SoftIoULoss(RegionLoss):
    """Soft intersection-over-union loss.

    Rahman, M. A. and Wang, Y. (2016) Optimizing Intersection-Over-Union in Deep Neural Networks for
    Image Segmentation. ISVC 2016. With ``p`` the probabilities and ``g`` the target,

    .. math::
        I = \\sum p g, \\quad U = \\sum (p + g - p g), \\quad
        L = 1 - \\frac{I + \\mathrm{smooth\\_nr}}{U + \\mathrm{smooth\\_dr}}

    summed over the spatial axes of each item and channel (and the batch with ``batch=True``, as the
    paper does over a minibatch). ``U`` is computed as ``Σp + Σg − I`` (= TP + FP + FN) rather than
    element by element, which is algebraically the same and avoids a full-size temporary. With
    smoothing 0 the gradient is the paper's closed form, ``∂L/∂p_v = −1/U`` where ``g_v = 1`` and
    ``I/U²`` where ``g_v = 0``; on hard 0/1 inputs ``L`` is one minus the Jaccard index.

    It gives the same value as ``monai.losses.DiceLoss(jaccard=True)`` with the same smoothing; this
    class exists so that the paper's loss has its own name, docstring and tests.

    Args: see :class:`medseg.losses.base.RegionLoss` (MONAI's Dice loss arguments).
    """

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, n: int) -> torch.Tensor:
        return 1.0 - (tp + self.smooth_nr) / (tp + fp + fn + self.smooth_dr)
