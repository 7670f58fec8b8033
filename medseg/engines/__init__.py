"""Training and evaluation workflows on MONAI's Ignite engines."""

from .capsule import PrepareBatchSegCaps, segcaps_postprocessing
from .workflows import EpochReport, binary_postprocessing, supervised_workflow

__all__ = [
    "EpochReport",
    "PrepareBatchSegCaps",
    "binary_postprocessing",
    "segcaps_postprocessing",
    "supervised_workflow",
]
