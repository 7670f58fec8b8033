"""SegCaps' margin loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.utils import LossReduction

from .base import SegmentationLoss

__all__ = ["MarginLoss"]


#: Elements per block: the block's temporaries (1 MiB each in float32) stay in the CPU caches.
BLOCK = 2**18


class _MarginFunction(torch.autograd.Function):
    """Margin loss, reduced or element-wise, as one autograd node with a hand-written backward.

    With ``hi = 0.5 + m`` and ``lo = 0.5 − m``:
    ``ℓ = lerp(½d·relu(p − lo)², ½w·relu(hi − p)², g)`` and
    ``∂ℓ/∂p = lerp(d·relu(p − lo), −w·relu(hi − p), g)``, times ``p(1 − p)`` for logits.

    Composed of a dozen element-wise autograd ops, the loss ran about twice as slow as PyTorch's
    fused ``binary_cross_entropy_with_logits``: each op streams the whole tensor through memory.
    Here the flattened input is processed in blocks of :data:`BLOCK` elements with in-place
    temporaries that stay in cache, only the input and target are kept for the backward pass (the
    sigmoid is recomputed), and for ``"mean"``/``"sum"`` no element-wise loss is materialised.
    No gradient flows to the target.
    """

    @staticmethod
    def forward(ctx, input, target, margin, downweight, pos_weight, from_logits, reduction):  # type: ignore[override]
        x, g = input.reshape(-1), target.reshape(-1)
        elementwise = torch.empty_like(x) if reduction == LossReduction.NONE.value else None
        scratch = x.new_empty(min(BLOCK, x.numel())) if elementwise is None else None
        total = x.new_zeros(())
        for start in range(0, x.numel(), BLOCK):
            block = slice(start, start + BLOCK)
            p = torch.sigmoid(x[block]) if from_logits else x[block]
            out = elementwise[block] if elementwise is not None else scratch[: p.numel()]
            positive = (0.5 + margin - p).clamp_(min=0).square_().mul_(0.5 * pos_weight)
            torch.sub(p, 0.5 - margin, out=out).clamp_(min=0).square_().mul_(0.5 * downweight).lerp_(positive, g[block])
            if elementwise is None:
                total += out.sum()
        ctx.save_for_backward(input, target)
        ctx.constants = (margin, downweight, pos_weight, from_logits, reduction)
        if elementwise is not None:
            return elementwise.view_as(input)
        return total / x.numel() if reduction == LossReduction.MEAN.value else total

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        input, target = ctx.saved_tensors
        margin, downweight, pos_weight, from_logits, reduction = ctx.constants
        x, g = input.reshape(-1), target.reshape(-1)
        if reduction == LossReduction.NONE.value:
            upstream = grad_output.reshape(-1)
        else:
            upstream = grad_output / x.numel() if reduction == LossReduction.MEAN.value else grad_output
        grad = torch.empty_like(x)
        for start in range(0, x.numel(), BLOCK):
            block = slice(start, start + BLOCK)
            p = torch.sigmoid(x[block]) if from_logits else x[block]
            positive = (0.5 + margin - p).clamp_(min=0).mul_(-pos_weight)
            out = torch.sub(p, 0.5 - margin, out=grad[block]).clamp_(min=0).mul_(downweight).lerp_(positive, g[block])
            if from_logits:
                out.mul_(p.sub_(p.square()))  # p is the block's own sigmoid here: p(1 - p) in place
            out.mul_(upstream[block] if upstream.dim() else upstream)
        return grad.view_as(input), None, None, None, None, None, None


class MarginLoss(SegmentationLoss):
    """The margin loss of the official SegCaps code (LaLonde & Bagci 2018), element-wise.

    With ``p`` the predicted capsule length (a probability), ``m`` the margin and ``d`` the
    down-weight, deviations beyond ``0.5 ± m`` are penalised quadratically:

    .. math::
        \\ell = \\tfrac{1}{2} w\\, g\\, \\max(0, 0.5 + m - p)^2
              + \\tfrac{1}{2} d\\, (1 - g) \\max(0, p - 0.5 + m)^2

    so with the defaults m = 0.4 and d = 0.5 positives are pushed above 0.9 and negatives below
    0.1, the negative term counting half (the capsule-network margin loss of Sabour et al. 2017,
    per pixel). ``w`` is an optional positive-class weight. Averaged over all elements with
    ``reduction="mean"``.

    Args:
        margin: ``m``, the margin around 0.5.
        downweight: ``d``, the weight of the negative term.
        pos_weight: ``w``, the weight of the positive term.
        other arguments: see :class:`medseg.losses.base.SegmentationLoss`; the input is a probability
            (capsule length) unless ``sigmoid``/``softmax``/``other_act`` is set.
    """

    def __init__(
        self,
        margin: float = 0.4,
        downweight: float = 0.5,
        pos_weight: float = 1.0,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            reduction=reduction,
        )
        if not 0 <= margin <= 0.5:
            raise ValueError(f"margin must be in [0, 0.5], got {margin}.")
        if downweight < 0 or not pos_weight > 0:
            raise ValueError(
                f"downweight must be non-negative and pos_weight positive, got {downweight} and {pos_weight}."
            )
        self.margin, self.downweight, self.pos_weight = float(margin), float(downweight), float(pos_weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, H, W[, D])`` capsule lengths (probabilities), or logits with ``sigmoid=True``.
            target: same shape, values in [0, 1] (or class indices with ``to_onehot_y``).
        """
        input, target = self.prepare(input, target, activate=False)
        return _MarginFunction.apply(
            input, target, self.margin, self.downweight, self.pos_weight, self.sigmoid, self.reduction
        )
