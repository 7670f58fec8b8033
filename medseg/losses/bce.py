"""Weighted binary cross-entropy (SegCaps)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from monai.utils import LossReduction

from .base import SegmentationLoss

__all__ = ["WeightedBCELoss"]


class WeightedBCELoss(SegmentationLoss):
    """Binary cross-entropy with a weight on the positive class, as SegCaps trains with it.

    LaLonde, R. and Bagci, U. (2018) Capsules for Object Segmentation. MIDL 2018. Element-wise,

    .. math::
        \\ell = -\\left[w\\, g \\log p + (1 - g) \\log(1 - p)\\right]

    averaged over all elements (``reduction="mean"``). With ``sigmoid=True`` the input is logits and
    the loss is computed in the numerically stable log-sigmoid form by
    :func:`torch.nn.functional.binary_cross_entropy_with_logits` (which implements exactly this
    weighting); otherwise the input is probabilities, clipped to ``[eps, 1 − eps]`` (``eps = 1e-7``
    as Keras did) before the logarithms. ``pos_weight = 1`` is the plain binary cross-entropy. SegCaps
    sets ``w`` to the negative/positive pixel ratio of the training masks,
    :func:`medseg.losses.compute_pos_weight`.

    Args:
        pos_weight: ``w``, the weight of the positive class (a positive number).
        eps: clipping of probabilities when ``sigmoid=False``.
        other arguments: see :class:`medseg.losses.base.SegmentationLoss`. ``reduction="none"``
            returns the element-wise loss.
    """

    def __init__(
        self,
        pos_weight: float = 1.0,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            reduction=reduction,
        )
        if not pos_weight > 0:
            raise ValueError(f"pos_weight must be positive, got {pos_weight}.")
        if not 0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps}.")
        self.register_buffer("pos_weight", torch.tensor(float(pos_weight)))
        self.pos_weight: torch.Tensor
        self.weighted = pos_weight != 1.0  # torch's unweighted kernel is faster than a weight of one
        self.eps = eps

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, H, W[, D])`` probabilities, or logits with ``sigmoid=True``.
            target: same shape, values in [0, 1] (or class indices with ``to_onehot_y``).
        """
        input, target = self.prepare(input, target, activate=False)
        if self.sigmoid:
            pos_weight = self.pos_weight if self.weighted else None
            return F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight, reduction=self.reduction)
        p = input.clamp(self.eps, 1.0 - self.eps)
        loss = -(self.pos_weight * target * torch.log(p) + (1.0 - target) * torch.log1p(-p))
        return self.reduce(loss)
