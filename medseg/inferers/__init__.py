"""MONAI inferers that medseg adds: test-time flipping around any MONAI inferer."""

from .flip import FlipAveragingInferer

__all__ = ["FlipAveragingInferer"]
