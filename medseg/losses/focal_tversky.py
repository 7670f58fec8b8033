"""Focal-Tversky loss (Abraham & Khan 2019)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.utils import LossReduction

from .base import RegionLoss

__all__ = ["FocalTverskyLoss"]


class FocalTverskyLoss(RegionLoss):
    """Focal-Tversky loss.

    Abraham, N. and Khan, N. M. (2019) A Novel Focal Tversky Loss Function with Improved Attention
    U-Net for Lesion Segmentation. ISBI 2019.

    .. math::
        TI = \\frac{TP + \\mathrm{smooth\\_nr}}{TP + \\alpha FP + \\beta FN + \\mathrm{smooth\\_dr}},
        \\qquad L = (1 - TI)^{\\gamma}

    with MONAI's convention (as in :class:`monai.losses.TverskyLoss`): ``alpha`` weights false
    positives and ``beta`` false negatives. The defaults are the paper's: α = 0.3, β = 0.7 and
    γ = 0.75 (the paper writes the exponent as 1/γ with γ = 4/3; its official code names the
    false-negative weight α = 0.7). The paper's code used smoothing 1; the defaults here are MONAI's
    1e-5. With ``gamma=1`` this is MONAI's Tversky loss; with α = β = 0.5 and ``gamma=1``, the Dice
    loss up to the smoothing terms. Since γ < 1 makes the gradient of ``(1 − TI)^γ`` grow without
    bound as TI → 1, ``1 − TI`` is clamped at the smallest normal float before the power, so a
    perfect prediction gives a finite loss and gradient. A negative ``1 − TI``, which only inputs outside
    [0, 1] produce beyond rounding, is returned as it is rather than clamped to 0, so that the input checks
    (:mod:`medseg.losses.checks`) see it.

    Args:
        alpha: weight of the false positives.
        beta: weight of the false negatives.
        gamma: focal exponent (0.75 in the paper; 1 gives the Tversky loss).
        other arguments: see :class:`medseg.losses.base.RegionLoss` (MONAI's Dice loss arguments).
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        alpha: float = 0.3,
        beta: float = 0.7,
        gamma: float = 0.75,
    ) -> None:
        super().__init__(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            reduction=reduction,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
        )
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be non-negative, got {alpha} and {beta}.")
        if gamma <= 0:
            raise ValueError(f"gamma must be positive, got {gamma}.")
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, n: int) -> torch.Tensor:
        tversky = (tp + self.smooth_nr) / (tp + self.alpha * fp + self.beta * fn + self.smooth_dr)
        distance = 1.0 - tversky
        # TI > 1 needs inputs outside [0, 1] (or rounding): kept negative, the input checks see it
        return torch.where(distance < 0, distance, distance.clamp_min(torch.finfo(tversky.dtype).tiny) ** self.gamma)
