"""The 2D U-Net of the chest X-ray loss study (Ronneberger et al. 2015 layout, 32-512 filters).

Written here rather than configured from MONAI because neither MONAI's ``UNet`` (residual units, strided
convolutions) nor ``BasicUNet`` (its last decoder level keeps the full channel count in the transposed
convolution) reproduce this exact network; both remain available through :func:`medseg.networks.get_network`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers import get_norm_layer
from torch import nn

from .utils import run_padded

__all__ = ["UNet2D"]


def _conv(in_channels: int, out_channels: int, norm: str | tuple | None) -> list[nn.Module]:
    """A 3×3 "same" convolution, MONAI's normalisation layer ``norm`` if any (then without bias), a ReLU."""
    if norm is None:
        return [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True)]
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        get_norm_layer(norm, spatial_dims=2, channels=out_channels),
        nn.ReLU(inplace=True),
    ]


class _DoubleConv(nn.Sequential):
    """Two 3×3 "same" convolutions, each followed by the normalisation (if any) and a ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm: str | tuple | None = None) -> None:
        super().__init__(*_conv(in_channels, out_channels, norm), *_conv(out_channels, out_channels, norm))


class UNet2D(nn.Module):
    """U-Net: 3×3 convolution pairs, 2×2 max-pooling, 2×2 stride-2 transposed convolutions, skip concatenation.

    Dubey et al. (chest X-ray segmentation loss study) use filters 32, 64, 128, 256, 512 and a 1×1 output
    convolution: 7,759,521 parameters for one input and one output channel. The output is the 1×1
    convolution's logits (MONAI's convention: use ``sigmoid=True`` / ``softmax=True`` in the loss).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        features: filters per level, encoder top to bottleneck.
        norm: MONAI's name of a normalisation layer after each convolution (e.g. ``"batch"``, ``"instance"``,
            see ``monai.networks.layers.get_norm_layer``); ``None``, the study's network, has none.
        pad_input: zero-pad inputs whose height or width is not a multiple of ``2 ** (len(features) - 1)`` and
            crop the output back; otherwise such inputs raise a ``ValueError``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (32, 64, 128, 256, 512),
        pad_input: bool = False,
        norm: str | tuple | None = None,
    ) -> None:
        super().__init__()
        if len(features) < 2:
            raise ValueError(f"features needs at least two levels, got {features}")
        self.size_multiple = 2 ** (len(features) - 1)
        self.pad_input = pad_input
        channels = [in_channels, *features]
        self.encoder = nn.ModuleList(_DoubleConv(channels[i], channels[i + 1], norm) for i in range(len(features)))
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(features[i], features[i - 1], 2, stride=2) for i in range(len(features) - 1, 0, -1)
        )
        self.decoder = nn.ModuleList(
            _DoubleConv(2 * features[i - 1], features[i - 1], norm) for i in range(len(features) - 1, 0, -1)
        )
        self.output = nn.Conv2d(features[0], out_channels, 1)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for upsample, block in zip(self.upsample, self.decoder):
            x = block(torch.cat([upsample(x), skips.pop()], dim=1))
        return self.output(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_padded(self._forward, x, self.size_multiple, self.pad_input, type(self).__name__)
