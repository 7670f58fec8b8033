"""Test-time augmentation by small translations, as a MONAI ``Inferer``.

A network with strided down-sampling (a U-Net) is not exactly equivariant to translation: moving the image by a
few pixels moves the prediction and changes it slightly at the edges of the objects. Averaging the outputs over
copies of the image moved by :math:`\\pm s` pixels along each axis, each moved back, is the deterministic
translation special case of MONAI's ``TestTimeAugmentation`` (``monai.data``, which draws random transforms per
item and inverts them through the data pipeline):

.. math::

    \\hat{y}_i(x) = \\frac{f(x)_i + \\sum_{d \\in D,\\ i + d \\in \\Omega} f(T_d x)_{i + d}}
                       {1 + |\\{d \\in D : i + d \\in \\Omega\\}|},
    \\qquad D = \\{\\pm s\\, e_a : a \\in A\\},

where :math:`T_d` moves the image by :math:`d` (the edge value repeated into the gap, as ``torch.nn.functional.pad``
in ``"replicate"`` mode), :math:`f` is the wrapped inferer applied with the network and :math:`\\Omega` the image
grid. A pixel moved out of the grid by :math:`T_d` has no prediction in that copy, so the mean at each pixel is
over the copies that kept it. Outputs are averaged as the network gives them (logits for most networks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.inferers import Inferer

__all__ = ["ShiftAveragingInferer", "shift"]


def shift(tensor: torch.Tensor, offset: int, dim: int) -> torch.Tensor:
    """``tensor`` moved by ``offset`` positions along ``dim``: ``out[i] = tensor[i - offset]``, the edge value
    repeated into the positions left empty."""
    size = tensor.shape[dim]
    if offset == 0:
        return tensor
    if abs(offset) >= size:
        raise ValueError(f"a shift of {offset} along dimension {dim} of size {size}")
    if offset > 0:
        edge = tensor.narrow(dim, 0, 1).expand_as(tensor.narrow(dim, 0, offset))
        return torch.cat([edge, tensor.narrow(dim, 0, size - offset)], dim)
    edge = tensor.narrow(dim, size - 1, 1).expand_as(tensor.narrow(dim, 0, -offset))
    return torch.cat([tensor.narrow(dim, -offset, size + offset), edge], dim)


class ShiftAveragingInferer(Inferer):
    """The mean of ``inferer``'s outputs on the input and on its copies moved by ``±pixels`` along each of
    ``spatial_axes``, each moved back (``1 + 2 * len(spatial_axes)`` passes).

    Args:
        inferer: any MONAI inferer (e.g. ``SlidingWindowInferer``), applied to each moved input.
        pixels: the translation in pixels; 0: the wrapped inferer alone.
        spatial_axes: the spatial axes to move along, one at a time (0 is the first axis after the channel).
    """

    def __init__(self, inferer: Inferer, pixels: int = 4, spatial_axes: Sequence[int] = (0, 1)) -> None:
        super().__init__()
        if pixels < 0:
            raise ValueError(f"pixels must be 0 or more, got {pixels}")
        self.inferer, self.pixels = inferer, int(pixels)
        self.spatial_axes = tuple(int(axis) for axis in spatial_axes)

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        for axis in self.spatial_axes:
            if not 0 <= axis < inputs.ndim - 2:
                shape = tuple(inputs.shape)
                raise ValueError(f"spatial axis {axis} for an input of shape {shape} (batch, channel, ...)")
        total = self.inferer(inputs, network, *args, **kwargs)
        if self.pixels == 0 or not self.spatial_axes:
            return total
        count = torch.ones_like(total)
        for dim in (axis + 2 for axis in self.spatial_axes):
            for offset in (self.pixels, -self.pixels):
                output = self.inferer(shift(inputs, offset, dim), network, *args, **kwargs)
                kept = torch.ones_like(output).narrow(dim, 0, output.shape[dim] - abs(offset))
                kept = torch.cat([kept, torch.zeros_like(output).narrow(dim, 0, abs(offset))], dim)
                if offset < 0:  # the pixels moved out are the first ones
                    kept = kept.flip(dim)
                total = total + shift(output, -offset, dim) * kept
                count = count + kept
        return total / count
