"""FC-DenseNet ("The One Hundred Layers Tiramisu"), Jégou et al., CVPR Workshops 2017.

Faithful to the authors' Lasagne code: a 3×3 first convolution with 48 filters; dense blocks of
BN-ReLU-3×3 conv (``growth_rate`` filters)-dropout layers whose outputs are concatenated to their input;
transition down = BN-ReLU-1×1 conv (same width)-dropout-2×2 max-pooling; in the upsampling path only the
feature maps produced by the previous dense block are upsampled, by a 3×3 stride-2 transposed convolution
with as many filters (its 2H+1 output is cropped to the skip connection's 2H), then concatenated with the
skip connection. A 1×1 convolution gives the class logits (the softmax is left to the loss, MONAI's
convention). Kernels He-uniform, dropout 0.2.

Variants: 56 (4 layers per block, growth 12), 67 (5 layers per block, growth 16), 103 (growth 16, blocks
4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4); the paper reports 1.5 M, 3.5 M and 9.4 M parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from .utils import run_padded

__all__ = ["FCDENSENET_VARIANTS", "FCDenseNet"]

# variant: (layers per dense block, down path, bottleneck and up path; growth rate)
FCDENSENET_VARIANTS: dict[int, tuple[tuple[int, ...], int]] = {
    56: ((4,) * 11, 12),
    67: ((5,) * 11, 16),
    103: ((4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4), 16),
}


def _bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int, dropout: float) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(), conv, nn.Dropout(dropout))


class _DenseBlock(nn.Module):
    """Dense block; returns the input with all new feature maps appended, and the new feature maps alone."""

    def __init__(self, in_channels: int, num_layers: int, growth_rate: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _bn_relu_conv(in_channels + i * growth_rate, growth_rate, 3, dropout) for i in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        new = []
        for layer in self.layers:
            new.append(layer(x))
            x = torch.cat([x, new[-1]], dim=1)
        return x, torch.cat(new, dim=1)


class _TransitionUp(nn.Module):
    """3×3 stride-2 transposed convolution (no padding), cropped to the skip connection and concatenated to it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(channels, channels, 3, stride=2)
        nn.init.kaiming_uniform_(self.deconv.weight, nonlinearity="relu")
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.deconv(x)[..., : skip.shape[-2], : skip.shape[-1]]
        return torch.cat([up, skip], dim=1)


class FCDenseNet(nn.Module):
    """FC-DenseNet 56, 67 or 103 (Jégou et al. 2017); see the module docstring.

    Args:
        variant: 56, 67 or 103.
        in_channels: input channels.
        out_channels: output channels (logits).
        dropout: dropout probability after every convolution of the dense blocks and transitions.
        first_filters: filters of the first 3×3 convolution.
        pad_input: zero-pad inputs whose height or width is not a multiple of 32 and crop the output back;
            otherwise such inputs raise a ``ValueError``.
    """

    def __init__(
        self,
        variant: int = 103,
        in_channels: int = 1,
        out_channels: int = 1,
        dropout: float = 0.2,
        first_filters: int = 48,
        pad_input: bool = False,
    ) -> None:
        super().__init__()
        if variant not in FCDENSENET_VARIANTS:
            raise ValueError(f"FCDenseNet variant must be one of {sorted(FCDENSENET_VARIANTS)}, got {variant}")
        layers, growth = FCDENSENET_VARIANTS[variant]
        self.variant, self.pad_input = variant, pad_input
        num_pool = len(layers) // 2
        self.size_multiple = 2**num_pool
        self.first_conv = nn.Conv2d(in_channels, first_filters, 3, padding=1)
        nn.init.kaiming_uniform_(self.first_conv.weight, nonlinearity="relu")
        nn.init.zeros_(self.first_conv.bias)
        channels = first_filters
        self.down_blocks, self.transitions_down, skip_channels = nn.ModuleList(), nn.ModuleList(), []
        for num_layers in layers[:num_pool]:
            self.down_blocks.append(_DenseBlock(channels, num_layers, growth, dropout))
            channels += growth * num_layers
            skip_channels.append(channels)
            self.transitions_down.append(nn.Sequential(_bn_relu_conv(channels, channels, 1, dropout), nn.MaxPool2d(2)))
        self.bottleneck = _DenseBlock(channels, layers[num_pool], growth, dropout)
        self.transitions_up, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        for i, num_layers in enumerate(layers[num_pool + 1 :]):
            upsampled = growth * layers[num_pool + i]
            self.transitions_up.append(_TransitionUp(upsampled))
            channels = upsampled + skip_channels[-1 - i]
            self.up_blocks.append(_DenseBlock(channels, num_layers, growth, dropout))
        channels += growth * layers[-1]
        self.output = nn.Conv2d(channels, out_channels, 1)
        nn.init.kaiming_uniform_(self.output.weight, nonlinearity="relu")
        nn.init.zeros_(self.output.bias)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.first_conv(x), []
        for block, transition in zip(self.down_blocks, self.transitions_down):
            x, _ = block(x)
            skips.append(x)
            x = transition(x)
        _, new = self.bottleneck(x)
        for transition, block in zip(self.transitions_up, self.up_blocks):
            x, new = block(transition(new, skips.pop()))
        return self.output(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_padded(self._forward, x, self.size_multiple, self.pad_input, f"FCDenseNet{self.variant}")
