"""Weighted binary cross-entropy (SegCaps), and the weighted cross-entropy of several classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.utils import LossReduction

from .base import SegmentationLoss

__all__ = ["WeightedBCELoss"]


class WeightedBCELoss(SegmentationLoss):
    """Binary cross-entropy with a weight on the positive class, as SegCaps trains with it; for several labels, the
    cross-entropy with a weight per class.

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

    With ``softmax=True`` (logits of ``C`` mutually exclusive classes, background first, and a one-hot target),
    each pixel's loss is the weighted cross-entropy over the classes,

    .. math::

        \\ell = -\\sum_c w_c\\, g_c \\log p_c,

    computed from ``log_softmax`` of the logits, averaged over the pixels; ``pos_weight`` is then one weight per
    class (:func:`medseg.losses.compute_class_weights`: the background's 1, each label's the background/label pixel
    ratio), or one number for all the labels. Two classes with weights ``(1, w)`` give the binary loss above with
    ``pos_weight = w`` (the logit being the difference of the two).

    Args:
        pos_weight: ``w``, the weight of the positive class (a positive number); with ``softmax``, a weight per
            class (or one number: 1 for the background, it for every label).
        eps: clipping of probabilities when neither ``sigmoid`` nor ``softmax``.
        other arguments: see :class:`medseg.losses.base.SegmentationLoss`. ``reduction="none"``
            returns the element-wise loss (with ``softmax``: per pixel, ``(B, 1, ...)``).
    """

    def __init__(
        self,
        pos_weight: float | Sequence[float] = 1.0,
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
        weights = torch.as_tensor(pos_weight, dtype=torch.float32).flatten()
        if not bool((weights > 0).all()) or weights.numel() == 0:
            raise ValueError(f"pos_weight must be positive, got {pos_weight}.")
        if weights.numel() > 1 and not softmax:
            raise ValueError("a weight per class (pos_weight of several values) needs softmax=True.")
        if not 0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps}.")
        if softmax and not include_background:
            raise ValueError("the cross-entropy of several classes needs every class (include_background=True).")
        self.register_buffer("pos_weight", weights if weights.numel() > 1 else weights[0])
        self.pos_weight: torch.Tensor
        self.weighted = bool((weights != 1.0).any())  # torch's unweighted kernel is faster than a weight of one
        self.eps = eps

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, H, W[, D])`` probabilities, or logits with ``sigmoid=True`` or ``softmax=True``.
            target: same shape, values in [0, 1] (or class indices with ``to_onehot_y``).
        """
        input, target = self.prepare(input, target, activate=False)
        if self.softmax and input.shape[1] > 1:
            return self._cross_entropy(torch.log_softmax(input, dim=1), target)
        if self.sigmoid:
            pos_weight = self.pos_weight if self.weighted else None
            return F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight, reduction=self.reduction)
        p = input.clamp(self.eps, 1.0 - self.eps)
        loss = -(self.pos_weight * target * torch.log(p) + (1.0 - target) * torch.log1p(-p))
        return self.reduce(loss)

    def _cross_entropy(self, log_p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``-Σ_c w_c g_c log p_c`` per pixel (``(B, 1, ...)``), reduced."""
        classes = log_p.shape[1]
        weights = self.pos_weight.to(log_p)
        if weights.dim() == 0:  # one number: the labels' weight, the background's 1
            weights = torch.cat([weights.new_ones(1), weights.expand(classes - 1)])
        if weights.numel() != classes:
            raise ValueError(
                f"pos_weight has {weights.numel()} weights for {classes} classes of input {tuple(log_p.shape)}."
            )
        shape = [1, classes] + [1] * (log_p.dim() - 2)
        loss = -(weights.view(shape) * target * log_p).sum(dim=1, keepdim=True)
        return self.reduce(loss)
