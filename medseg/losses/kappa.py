"""Kappa loss (Zhang et al.): one minus a soft Cohen's kappa."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from monai.utils import LossReduction

from .base import RegionLoss

__all__ = ["KappaLoss"]


class KappaLoss(RegionLoss):
    """One minus Cohen's kappa between soft predictions and the target.

    Zhang, J. et al., Kappa loss for skin lesion segmentation in fully convolutional network
    (technical report). Cohen's kappa is ``κ = (p_o − p_c) / (1 − p_c)`` with ``p_o`` the observed
    and ``p_c`` the chance agreement, so the loss is ``1 − κ = (1 − p_o) / (1 − p_c)`` (the report's
    eq. 18-22). Written with soft counts over the ``N`` elements summed (``Σp``, ``Σg``, ``Σpg``):

    .. math::
        \\kappa = \\frac{2\\sum pg - 2\\sum p \\sum g / N}{\\sum p + \\sum g - 2 \\sum p \\sum g / N},
        \\qquad L = 1 - \\frac{\\mathrm{num} + \\mathrm{smooth\\_nr}}{\\mathrm{den} + \\mathrm{smooth\\_dr}}

    This default, exact form equals ``1 − sklearn.metrics.cohen_kappa_score`` on hard 0/1 masks. It
    is evaluated as ``num = 2(TP·TN − FP·FN)/N`` and ``den = (Σp(N − Σg) + Σg(N − Σp))/N``, the same
    quantities written without the cancellation of large products.

    ``published_form=True`` reproduces the report's implementation (its eq. 26), whose numerator
    ``2Σpg − ΣpΣg/N`` subtracts the chance term once instead of twice and whose denominator
    ``Σp + Σg − 2Σpg/N`` uses ``Σpg`` where kappa has ``ΣpΣg/N``; it is not Cohen's kappa (its
    optimum is not at κ = 1 and it does not vanish for chance-level predictions), but it lets the
    report's results be reproduced. The report's code fixed ``N`` at 256·256; here ``N`` is the
    number of elements summed (256·256 for one 256×256 image per item with ``batch=False``).

    With ``softmax=True`` (``C`` mutually exclusive classes, background included), the loss is one minus the
    multi-class Cohen's kappa of the soft confusion matrix ``M_ij = Σ g_i p_j`` over the ``N`` elements, written in
    counts (observed agreement ``A = Σ_i M_ii``, agreement expected by chance ``E = Σ_i Σg_i Σp_i / N``):

    .. math::

        \\kappa = \\frac{p_o - p_c}{1 - p_c} = \\frac{A - E}{N - E}, \\qquad
        L = 1 - \\frac{A - E + \\mathrm{smooth\\_nr}}{N - E + \\mathrm{smooth\\_dr}},

    which on hard one-hot masks equals ``1 − sklearn.metrics.cohen_kappa_score`` of the class maps. For two classes
    ``A − E = 2(TP·TN − FP·FN)/N`` and ``N − E`` is the denominator above, so the loss is the binary one, smoothing
    included (kappa does not depend on which class is called positive). ``reduction="none"`` then gives one value
    per item, ``(B, 1, ...)``.

    Args:
        published_form: use the report's eq. 26 instead of the exact kappa (one label only).
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
        published_form: bool = False,
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
        self.published_form = published_form

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not (self.softmax and input.shape[1] > 1):
            return super().forward(input, target)
        if self.published_form or not self.include_background:
            raise ValueError("the kappa of several classes is the exact one, over every class (include_background).")
        input, target = self.prepare(input, target)
        axes = [0, *range(2, input.dim())] if self.batch else list(range(2, input.dim()))
        n = math.prod(input.shape[axis] for axis in axes)
        agreement = (input * target).sum(dim=axes).sum(dim=-1)  # A = Σ_i M_ii
        chance = (input.sum(dim=axes) * target.sum(dim=axes)).sum(dim=-1) / n  # E = Σ_i Σg_i Σp_i / N
        loss = 1.0 - (agreement - chance + self.smooth_nr) / (n - chance + self.smooth_dr)
        if self.reduction == LossReduction.NONE.value:
            return loss.view([-1, 1] + [1] * (input.dim() - 2))
        return self.reduce(loss)

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, n: int) -> torch.Tensor:
        sum_p, sum_g = tp + fp, tp + fn
        if self.published_form:
            numerator = 2 * tp - sum_p * sum_g / n
            denominator = sum_p + sum_g - 2 * tp / n
        else:
            tn = n - tp - fp - fn
            numerator = 2 * (tp * tn - fp * fn) / n
            denominator = (sum_p * (n - sum_g) + sum_g * (n - sum_p)) / n
        return 1.0 - (numerator + self.smooth_nr) / (denominator + self.smooth_dr)
