"""The path every medseg loss shares: activation, one-hot, background exclusion, shape check, reduction.

It follows :class:`monai.losses.DiceLoss` argument for argument, so a medseg loss drops in wherever a
MONAI loss is used. Region losses (soft IoU, kappa, focal-Tversky) are all functions of the soft
true positives, false positives, false negatives and the number of elements ``N`` summed;
:class:`RegionLoss` computes those once with :func:`monai.losses.utils.compute_tp_fp_fn` (its fast
decoupled form FP = Σp − TP, FN = Σg − TP) in float32, and each subclass supplies only its formula.

Every medseg loss checks its inputs (:mod:`medseg.losses.checks`: a target outside [0, 1], NaN or infinite values
and empty inputs raise a ``ValueError`` naming the problem): :class:`SegmentationLoss` registers the checks on
itself when it is built, as :func:`medseg.losses.get_loss` does on MONAI's losses.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from monai.losses.utils import compute_tp_fp_fn
from monai.networks import one_hot
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from .checks import add_input_checks

__all__ = ["RegionLoss", "SegmentationLoss"]


class SegmentationLoss(_Loss):
    """Base of the medseg losses: MONAI's input conventions for ``input`` ``(B, C, H, W[, D])``.

    Args:
        include_background: if False, channel 0 (background) is excluded from the loss.
        to_onehot_y: convert ``target`` ``(B, 1, ...)`` to one-hot with ``input.shape[1]`` classes.
        sigmoid: apply a sigmoid to ``input`` (logits).
        softmax: apply a softmax over the channels of ``input`` (logits).
        other_act: another callable activation for ``input``, e.g. ``torch.tanh``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Raises:
        ValueError: when more than one of ``sigmoid``, ``softmax``, ``other_act`` is given, when
            ``other_act`` is not callable, or when ``reduction`` is not one of the three.
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        reduction = reduction.value if isinstance(reduction, LossReduction) else reduction
        valid = [r.value for r in LossReduction]
        if reduction not in valid:
            raise ValueError(f"reduction must be one of {valid}, got {reduction!r}.")
        super().__init__(reduction=reduction)
        if other_act is not None and not callable(other_act):
            raise ValueError(f"other_act must be None or callable, got {type(other_act).__name__}.")
        if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
            raise ValueError("Incompatible values: more than 1 of [sigmoid=True, softmax=True, other_act is not None].")
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.sigmoid = sigmoid
        self.softmax = softmax
        self.other_act = other_act
        add_input_checks(self)

    def prepare(
        self, input: torch.Tensor, target: torch.Tensor, activate: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``input`` and ``target`` of the same shape, activated, one-hot, background excluded.

        Half-precision inputs (float16, bfloat16, e.g. under ``torch.autocast``) are cast to float32
        so that the sums over many elements neither overflow nor lose precision.

        With ``activate=False`` a sigmoid or softmax is left to the caller (which may use a log-sigmoid or
        log-softmax form); ``other_act`` is always applied.

        Raises:
            ValueError: when ``input`` is not ``(B, C, spatial...)`` or the shapes of ``input`` and ``target``
                differ (the values are checked around ``forward``: :mod:`medseg.losses.checks`).
        """
        if input.dim() < 3:
            raise ValueError(f"input must have shape (B, C, spatial...), got {tuple(input.shape)}.")
        if input.dtype.itemsize < 4 or not input.is_floating_point():  # accumulate half precision in float32
            input = input.float()
        target = target.to(input.dtype)
        n_pred_ch = input.shape[1]
        if self.sigmoid and activate:
            input = torch.sigmoid(input)
        if self.softmax:
            if n_pred_ch == 1:
                warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=3)
            elif activate:
                input = torch.softmax(input, 1)
        if self.other_act is not None:
            input = self.other_act(input)
        if self.to_onehot_y:
            if n_pred_ch == 1:
                warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=3)
            else:
                target = one_hot(target, num_classes=n_pred_ch)
        if not self.include_background:
            if n_pred_ch == 1:
                warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=3)
            else:
                input, target = input[:, 1:], target[:, 1:]
        if target.shape != input.shape:
            raise ValueError(
                f"ground truth has a different shape {tuple(target.shape)} from input {tuple(input.shape)}."
            )
        return input, target

    def reduce(self, loss: torch.Tensor) -> torch.Tensor:
        """Apply ``self.reduction``: mean or sum of all values, or ``loss`` unchanged for ``"none"``."""
        if self.reduction == LossReduction.MEAN.value:
            return loss.mean()
        if self.reduction == LossReduction.SUM.value:
            return loss.sum()
        return loss


class RegionLoss(SegmentationLoss):
    """A loss computed per item and channel from soft TP, FP, FN and ``N`` (see :meth:`region_loss`).

    Args:
        smooth_nr: added to the numerator of the score, to keep empty masks finite.
        smooth_dr: added to the denominator of the score, to avoid division by zero.
        batch: sum TP, FP and FN over the batch before the ratio, as the papers do over a minibatch;
            otherwise each item gets its own score before ``reduction``.
        other arguments: see :class:`SegmentationLoss`.

    ``reduction="none"`` returns shape ``(B, C, 1, ...)`` (``(1, C, 1, ...)`` with ``batch=True``),
    broadcastable to the input, as MONAI's Dice loss does.
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
    ) -> None:
        super().__init__(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            reduction=reduction,
        )
        if smooth_nr < 0 or smooth_dr < 0:
            raise ValueError(f"smooth_nr and smooth_dr must be non-negative, got {smooth_nr} and {smooth_dr}.")
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
        self.batch = batch

    def region_loss(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, n: int) -> torch.Tensor:
        """The loss from soft TP, FP, FN (each of shape ``(B, C)`` or ``(C,)``) and ``n`` elements summed."""
        raise NotImplementedError

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, H, W[, D])`` probabilities, or logits with ``sigmoid``/``softmax``/``other_act``.
            target: ``(B, C, ...)``, or ``(B, 1, ...)`` class indices with ``to_onehot_y=True``.
        """
        input, target = self.prepare(input, target)
        reduce_axis = list(range(2, input.dim()))
        if self.batch:
            reduce_axis = [0, *reduce_axis]
        tp, fp, fn = compute_tp_fp_fn(input, target, reduce_axis, ord=1, soft_label=False, decoupled=True)
        n = math.prod(input.shape[axis] for axis in reduce_axis)
        loss = self.region_loss(tp, fp, fn, n)
        if self.reduction == LossReduction.NONE.value:
            return loss.view([1 if self.batch else input.shape[0], input.shape[1]] + [1] * (input.dim() - 2))
        return self.reduce(loss)
