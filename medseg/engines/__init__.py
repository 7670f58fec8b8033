"""Training and evaluation workflows on MONAI's Ignite engines."""

from .workflows import EpochReport, binary_postprocessing, supervised_workflow

__all__ = ["EpochReport", "binary_postprocessing", "supervised_workflow"]
