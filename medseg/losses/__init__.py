"""Segmentation losses with MONAI's loss API, and a registry to select them by name."""

from .base import RegionLoss, SegmentationLoss
from .bce import WeightedBCELoss
from .checks import EXACT_CHECK_CALLS, add_input_checks, check_loss_inputs
from .focal_tversky import FocalTverskyLoss
from .kappa import KappaLoss
from .margin import MarginLoss
from .reconstruction import SegCapsLoss
from .registry import LOSSES, NETWORK_OUTPUTS, LossSpec, ProbabilityInput, get_loss, multi_label_losses
from .soft_iou import SoftIoULoss
from .weights import compute_class_weights, compute_pos_weight

__all__ = [
    "EXACT_CHECK_CALLS",
    "LOSSES",
    "NETWORK_OUTPUTS",
    "FocalTverskyLoss",
    "KappaLoss",
    "LossSpec",
    "MarginLoss",
    "ProbabilityInput",
    "RegionLoss",
    "SegCapsLoss",
    "SegmentationLoss",
    "SoftIoULoss",
    "WeightedBCELoss",
    "add_input_checks",
    "check_loss_inputs",
    "compute_class_weights",
    "compute_pos_weight",
    "get_loss",
    "multi_label_losses",
]
