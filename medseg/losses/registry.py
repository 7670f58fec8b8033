"""Select a loss by name: the registry the bundles and the experiment runner use.

Where MONAI has the loss (Dice, generalised Dice, Tversky, focal, Dice-CE), the registry returns
MONAI's class itself; the papers' other losses are medseg's.
"""

from __future__ import annotations

from collections.abc import Callable

from monai.losses import DiceCELoss, DiceLoss, FocalLoss, GeneralizedDiceLoss, TverskyLoss
from torch.nn.modules.loss import _Loss

from .bce import WeightedBCELoss
from .focal_tversky import FocalTverskyLoss
from .kappa import KappaLoss
from .margin import MarginLoss
from .soft_iou import SoftIoULoss

__all__ = ["LOSSES", "get_loss"]


def _bce(**kwargs) -> WeightedBCELoss:
    if "pos_weight" in kwargs:
        raise ValueError("'bce' is the unweighted cross-entropy; use 'wbce' to pass pos_weight.")
    return WeightedBCELoss(**kwargs)


def _wbce(**kwargs) -> WeightedBCELoss:
    if "pos_weight" not in kwargs:
        raise ValueError("'wbce' needs pos_weight, e.g. medseg.losses.compute_pos_weight(training masks).")
    return WeightedBCELoss(**kwargs)


#: Registered names and the callables that build them from keyword arguments.
LOSSES: dict[str, Callable[..., _Loss]] = {
    "bce": _bce,
    "wbce": _wbce,
    "iou": SoftIoULoss,
    "dice": DiceLoss,
    "gdl": GeneralizedDiceLoss,
    "tversky": TverskyLoss,
    "focal": FocalLoss,
    "focal_tversky": FocalTverskyLoss,
    "dice_bce": DiceCELoss,
    "kappa": KappaLoss,
    "margin": MarginLoss,
}


def get_loss(name: str, **kwargs) -> _Loss:
    """Build the loss registered as ``name`` with ``kwargs``, e.g. ``get_loss("iou", sigmoid=True)``.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](**kwargs)
