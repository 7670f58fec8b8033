"""Select a loss by name, built for what the network outputs: the registry the bundles and the runners use.

Where MONAI has the loss (Dice, generalised Dice, Tversky, focal, Dice-CE), the registry returns MONAI's class
itself; the papers' other losses are medseg's. Each entry (:class:`LossSpec`) records what its loss expects:

- most losses take an activation flag: with ``sigmoid=True`` they read logits, without it probabilities;
- MONAI's ``FocalLoss`` and ``DiceCELoss`` (its BCE term) read logits only; given probabilities (SegCaps'
  capsule lengths) they are wrapped in :class:`ProbabilityInput`, which maps ``p`` back to ``logit(p)``;
- weighted BCE needs a ``pos_weight`` (SegCaps: :func:`medseg.losses.compute_pos_weight` of the training masks).

``get_loss(name, network_output="logits" | "probabilities")`` builds the loss accordingly, so no caller
branches on a loss name. Without ``network_output`` the keyword arguments are passed as they are (MONAI's
defaults: probabilities unless ``sigmoid``/``softmax`` is given).

Every loss it returns checks its inputs (:mod:`medseg.losses.checks`: a target outside [0, 1], non-finite values
and empty inputs raise a ``ValueError``): medseg's losses register the checks themselves, MONAI's get them here as
forward hooks, so that they remain MONAI's classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

import torch
from monai.losses import DiceCELoss, DiceLoss, FocalLoss, GeneralizedDiceLoss, TverskyLoss
from torch.nn.modules.loss import _Loss

from .base import SegmentationLoss
from .bce import WeightedBCELoss
from .checks import add_input_checks
from .focal_tversky import FocalTverskyLoss
from .kappa import KappaLoss
from .margin import MarginLoss
from .soft_iou import SoftIoULoss

__all__ = ["LOSSES", "NETWORK_OUTPUTS", "LossSpec", "ProbabilityInput", "get_loss", "multi_label_losses"]

#: What a network's raw output may be: ``"logits"`` (most networks) or ``"probabilities"`` (SegCaps).
NETWORK_OUTPUTS = ("logits", "probabilities")

_SIGMOID = MappingProxyType({"sigmoid": True})
_SOFTMAX = MappingProxyType({"softmax": True})


@dataclass(frozen=True)
class LossSpec:
    """A registered loss and what it expects.

    Args:
        factory: builds the loss from keyword arguments.
        description: one line for listings.
        logits_kwargs: the arguments that make the loss read logits (e.g. ``{"sigmoid": True}``).
        logits_only: the loss reads logits whatever its arguments; probabilities are mapped back to logits.
        needs_pos_weight: the loss needs ``pos_weight`` (the negative/positive pixel ratio).
        kind: ``"region"`` (a ratio of soft counts over the image: Dice, IoU, kappa, Tversky) or ``"pixel"`` (a
            mean of per-pixel terms: cross-entropies, focal, margin).
        softmax_kwargs: the arguments that make the loss read the logits of several labels and a one-hot target
            (background first); ``None``: the loss segments one label (SegCaps' margin loss).
    """

    factory: Callable[..., _Loss]
    description: str
    logits_kwargs: Mapping[str, Any] = field(default_factory=lambda: _SIGMOID)
    logits_only: bool = False
    needs_pos_weight: bool = False
    kind: str = "region"
    softmax_kwargs: Mapping[str, Any] | None = field(default_factory=lambda: _SOFTMAX)


class ProbabilityInput(_Loss):
    """Feed probabilities to a loss that reads logits: ``loss(logit(clamp(p, eps, 1 - eps)), target)``.

    ``sigmoid(logit(p)) = p``, so the wrapped loss sees the same probabilities it would compute itself; the
    clamp keeps exact 0 and 1 (a saturated capsule length) finite.
    """

    def __init__(self, loss: _Loss, eps: float = 1e-6) -> None:
        super().__init__()
        self.loss, self.eps = loss, eps

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(torch.logit(input.float(), eps=self.eps), target)


def _checked(loss: _Loss) -> _Loss:
    """``loss`` with the input checks, unless it is a medseg loss (which registers them itself)."""
    return loss if isinstance(loss, SegmentationLoss) else add_input_checks(loss)


def _bce(**kwargs: Any) -> WeightedBCELoss:
    if "pos_weight" in kwargs:
        raise ValueError("'bce' is the unweighted cross-entropy; use 'wbce' to pass pos_weight.")
    return WeightedBCELoss(**kwargs)


def _wbce(**kwargs: Any) -> WeightedBCELoss:
    if "pos_weight" not in kwargs:
        raise ValueError("'wbce' needs pos_weight, e.g. medseg.losses.compute_pos_weight(training masks).")
    return WeightedBCELoss(**kwargs)


#: Registered names and what they build.
LOSSES: dict[str, LossSpec] = {
    "bce": LossSpec(_bce, "binary cross-entropy (medseg WeightedBCELoss, pos_weight 1)", kind="pixel"),
    "wbce": LossSpec(_wbce, "weighted binary cross-entropy (SegCaps)", needs_pos_weight=True, kind="pixel"),
    "iou": LossSpec(SoftIoULoss, "soft IoU (Rahman & Wang 2016)"),
    "dice": LossSpec(DiceLoss, "soft Dice (MONAI DiceLoss)"),
    "gdl": LossSpec(GeneralizedDiceLoss, "generalised Dice (MONAI GeneralizedDiceLoss)"),
    "tversky": LossSpec(TverskyLoss, "Tversky (MONAI TverskyLoss)"),
    "focal": LossSpec(
        FocalLoss,
        "focal (MONAI FocalLoss)",
        logits_kwargs={},
        logits_only=True,
        kind="pixel",
        softmax_kwargs={"use_softmax": True},
    ),
    "focal_tversky": LossSpec(FocalTverskyLoss, "focal-Tversky (Abraham & Khan 2019)"),
    "dice_bce": LossSpec(DiceCELoss, "Dice + BCE (MONAI DiceCELoss)", logits_only=True),
    "kappa": LossSpec(KappaLoss, "one minus soft Cohen's kappa (Zhang et al.)"),
    "kappa_published": LossSpec(
        partial(KappaLoss, published_form=True),
        "the kappa report's published implementation (its eq. 26)",
        softmax_kwargs=None,
    ),
    "margin": LossSpec(MarginLoss, "margin loss (SegCaps code)", kind="pixel", softmax_kwargs=None),
}


def get_loss(name: str, network_output: str | None = None, labels: int = 1, **kwargs: Any) -> _Loss:
    """Build the loss registered as ``name``, e.g. ``get_loss("iou", network_output="logits")``.

    Args:
        name: a key of :data:`LOSSES`.
        network_output: what the loss will be given, one of :data:`NETWORK_OUTPUTS`; ``None`` passes
            ``kwargs`` unchanged (MONAI's convention).
        labels: the labels the network segments: one (one output map) or several (``labels + 1`` maps of logits,
            background first, and one-hot targets: the loss is built with its softmax arguments, MONAI's
            ``softmax=True``).
        kwargs: the loss's own arguments; they override what ``network_output`` implies.

    The loss checks its inputs on every call (see the module docstring).

    Raises:
        ValueError: for an unknown name or network output (the message lists the valid ones).
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    if network_output is not None and network_output not in NETWORK_OUTPUTS:
        raise ValueError(f"network_output must be one of {NETWORK_OUTPUTS}, got {network_output!r}")
    spec = LOSSES[name]
    if labels > 1:
        if spec.softmax_kwargs is None:
            raise ValueError(f"loss {name!r} segments one label; for several, choose one of {multi_label_losses()}")
        if network_output == "probabilities":
            raise ValueError("several labels need a network that outputs logits (a softmax over its maps)")
        return _checked(spec.factory(**{**spec.softmax_kwargs, **kwargs}))
    if network_output is None:
        return _checked(spec.factory(**kwargs))
    if network_output == "logits" or spec.logits_only:
        loss = spec.factory(**{**spec.logits_kwargs, **kwargs})
        return _checked(ProbabilityInput(loss) if network_output == "probabilities" else loss)
    return _checked(spec.factory(**kwargs))


def multi_label_losses() -> list[str]:
    """The losses that segment several labels at once (a softmax over the labels)."""
    return sorted(name for name, spec in LOSSES.items() if spec.softmax_kwargs is not None)
