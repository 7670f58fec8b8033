"""Test-time augmentation by mirroring, as a MONAI ``Inferer``.

MONAI's ``TestTimeAugmentation`` (``monai.data``) draws random transforms per item and inverts them through the
data pipeline, for uncertainty estimates; this is the deterministic special case that segmentation papers report
as "flip TTA": the network's output on the image and on its mirrored copies, each mirrored back, averaged:

.. math::

    \\hat{y}(x) = \\frac{1}{|A| + 1} \\Big( f(x) + \\sum_{a \\in A} F_a\\big(f(F_a(x))\\big) \\Big)

where :math:`F_a` mirrors the spatial axis :math:`a` and :math:`f` is the wrapped inferer applied with the
network. Outputs are averaged as the network gives them (logits for most networks), so the activation of the
post-processing applies to the mean. It suits images whose labels are mirror-symmetric in distribution (faces, with
left-right flips in training); chest radiographs are not (the heart is on the left), and there it lowered IoU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.inferers import Inferer

__all__ = ["FlipAveragingInferer"]


class FlipAveragingInferer(Inferer):
    """The mean of ``inferer``'s outputs on the input and on its mirrored copies along ``spatial_axes``.

    Args:
        inferer: any MONAI inferer (e.g. ``SlidingWindowInferer``), applied to each mirrored input.
        spatial_axes: spatial axes to mirror, one at a time (0 is the first axis after the channel; MONAI reads
            2D images as (x, y), so 0 mirrors left and right). Empty: the wrapped inferer alone.
    """

    def __init__(self, inferer: Inferer, spatial_axes: Sequence[int] = (0,)) -> None:
        super().__init__()
        self.inferer = inferer
        self.spatial_axes = tuple(int(axis) for axis in spatial_axes)

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        spatial_dims = inputs.ndim - 2
        for axis in self.spatial_axes:
            if not 0 <= axis < spatial_dims:
                shape = tuple(inputs.shape)
                raise ValueError(f"spatial axis {axis} for an input of shape {shape} (batch, channel, ...)")
        output = self.inferer(inputs, network, *args, **kwargs)
        if not self.spatial_axes:
            return output
        for dim in (axis + 2 for axis in self.spatial_axes):
            output = output + self.inferer(torch.flip(inputs, (dim,)), network, *args, **kwargs).flip(dim)
        return output / (len(self.spatial_axes) + 1)
