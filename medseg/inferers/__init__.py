"""MONAI inferers that medseg adds: test-time mirroring and moving around any MONAI inferer."""

from .flip import FlipAveragingInferer
from .shift import ShiftAveragingInferer, shift

__all__ = ["FlipAveragingInferer", "ShiftAveragingInferer", "shift"]
