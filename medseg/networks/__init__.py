"""Segmentation networks: SegCaps capsule networks."""

from .capsules import CapsuleConv2d, CapsuleConvTranspose2d, dynamic_routing, squash
from .segcaps import SegCapsBasic, SegCapsR1, SegCapsR3
from .utils import count_parameters

__all__ = [
    "CapsuleConv2d",
    "CapsuleConvTranspose2d",
    "SegCapsBasic",
    "SegCapsR1",
    "SegCapsR3",
    "count_parameters",
    "dynamic_routing",
    "squash",
]
