"""MONAI inferers that medseg adds: test-time mirroring and moving around any MONAI inferer, and mixed precision on
a CPU."""

from .autocast import AutocastInferer, cpu_bfloat16
from .flip import FlipAveragingInferer
from .shift import ShiftAveragingInferer, shift

__all__ = ["AutocastInferer", "FlipAveragingInferer", "ShiftAveragingInferer", "cpu_bfloat16", "shift"]
