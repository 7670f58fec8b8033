"""FCN-32s (Long et al., CVPR 2015) on VGG-16 (BFCN-32s), ResNet-50 (FCResNet) and AlexNet.

- ``vgg16``: BFCN-32s of van Beers et al. — VGG-16 conv blocks, fc6 as a 7×7 convolution with 4096 maps,
  fc7 as a 1×1 convolution with 4096 maps (ReLU and dropout 0.5 after each), 1×1 score layer.
- ``resnet50``: FCResNet of van Beers et al. — ResNet-50 encoder, one 7×7 convolution with 4096 maps, score.
- ``alexnet``: FCN-32s on AlexNet as in Rahman & Wang (2016) — fc6 and fc7 as 1×1 convolutions, score.

The score map (stride 32) is upsampled ×32 by a learnable transposed convolution (kernel 64, stride 32,
padding 16, no bias) initialised to bilinear interpolation, and cropped to the input size. Heights and widths
must be multiples of 32, as for every network of the registry, unless the network is built with
``pad_input=True``: inputs are then zero-padded (bottom/right) inside the network and the output cropped back.
The score layer starts at zero, as in Long et al. The output is logits (one map per class:
``out_channels=1`` with a sigmoid loss for the binary models of both papers).

``pretrained_weights=PATH`` loads a local state dict saved from torchvision's ``vgg16``, ``resnet50`` or
``alexnet`` (``torch.load(PATH, weights_only=True)``): the encoder keys must match exactly; torchvision's
classifier keys may be present and, when their shapes allow, initialise fc6/fc7 as in Long et al.
(``classifier.0``/``classifier.3`` of VGG-16 → 7×7 fc6 and 1×1 fc7). Nothing is downloaded.
``freeze_encoder=True`` freezes every encoder block but the last (their batch norms stay in eval mode).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .backbones import AlexNetEncoder, ResNet50Encoder, VGG16Encoder
from .utils import run_padded, validating

__all__ = ["FCN32s", "bilinear_kernel"]

# backbone: (encoder class, default fc6 kernel, has fc7, torchvision classifier layers for fc6 and fc7)
_BACKBONES: dict[str, tuple[type[nn.Module], int, bool, tuple[str, ...]]] = {
    "vgg16": (VGG16Encoder, 7, True, ("classifier.0", "classifier.3")),
    "resnet50": (ResNet50Encoder, 7, False, ()),
    "alexnet": (AlexNetEncoder, 1, True, ("classifier.1", "classifier.4")),
}


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Transposed-convolution weight ``[channels, channels, k, k]`` performing per-channel bilinear upsampling."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    grid = torch.arange(kernel_size, dtype=torch.float64)
    profile = 1 - (grid - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size, dtype=torch.float64)
    weight[range(channels), range(channels)] = profile[:, None] * profile[None, :]
    return weight.float()


def _summarise(keys: set[str], limit: int = 8) -> str:
    listed = sorted(keys)
    more = f" … and {len(listed) - limit} more" if len(listed) > limit else ""
    return ", ".join(listed[:limit]) + more


class FCN32s(nn.Module):
    """FCN-32s with a VGG-16, ResNet-50 or AlexNet encoder (see the module docstring).

    Args:
        backbone: ``"vgg16"``, ``"resnet50"`` or ``"alexnet"``.
        in_channels: image channels (3 for ImageNet weights; with 1, pretrained first-layer kernels are summed
            over RGB, which equals feeding the grey image on three channels).
        out_channels: score maps.
        fc_channels: width of fc6/fc7 (4096 in the papers; smaller values for tests).
        fc_kernel_size: kernel of fc6 (default 7 for vgg16/resnet50, 1 for alexnet as in Rahman & Wang).
        dropout: dropout after fc6/fc7.
        pretrained_weights: path of a torchvision state dict for the encoder.
        freeze_encoder: freeze all encoder blocks but the last.
        pad_input: zero-pad inputs whose height or width is not a multiple of 32 and crop the output back;
            otherwise such inputs raise a ``ValueError``.
    """

    size_multiple = 32

    def __init__(
        self,
        backbone: str = "vgg16",
        in_channels: int = 3,
        out_channels: int = 1,
        fc_channels: int = 4096,
        fc_kernel_size: int | None = None,
        dropout: float = 0.5,
        pretrained_weights: str | Path | None = None,
        freeze_encoder: bool = False,
        pad_input: bool = False,
    ) -> None:
        super().__init__()
        if backbone not in _BACKBONES:
            raise ValueError(f"FCN32s backbone must be one of {sorted(_BACKBONES)}, got {backbone!r}")
        encoder_class, default_kernel, has_fc7, self._classifier_layers = _BACKBONES[backbone]
        kernel = default_kernel if fc_kernel_size is None else fc_kernel_size
        if kernel % 2 == 0:
            raise ValueError(f"fc_kernel_size must be odd ('same' padding), got {kernel}")
        self.backbone, self.in_channels, self.pad_input = backbone, in_channels, pad_input
        self.encoder = encoder_class(in_channels)
        head: OrderedDict[str, nn.Module] = OrderedDict()
        head["fc6"] = nn.Conv2d(self.encoder.out_channels, fc_channels, kernel, padding=kernel // 2)
        head["relu6"], head["drop6"] = nn.ReLU(inplace=True), nn.Dropout(dropout)
        if has_fc7:
            head["fc7"] = nn.Conv2d(fc_channels, fc_channels, 1)
            head["relu7"], head["drop7"] = nn.ReLU(inplace=True), nn.Dropout(dropout)
        self.head = nn.Sequential(head)
        self.score = nn.Conv2d(fc_channels, out_channels, 1)
        self.upscore = nn.ConvTranspose2d(out_channels, out_channels, 64, stride=32, padding=16, bias=False)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        with torch.no_grad():
            self.upscore.weight.copy_(bilinear_kernel(out_channels, 64))
        if pretrained_weights is not None:
            self.load_pretrained(pretrained_weights)
        self.frozen_blocks: list[nn.Module] = self.encoder.blocks()[:-1] if freeze_encoder else []
        for block in self.frozen_blocks:
            block.requires_grad_(False)
        self.train()

    def load_pretrained(self, path: str | Path) -> None:
        """Load a torchvision state dict (see the module docstring); errors name the file and the keys."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, Mapping):
            raise ValueError(
                f"{path}: expected a state dict (a mapping of names to tensors), got {type(state).__name__}"
            )
        expected = set(self.encoder.state_dict())
        classifier = {k for k in state if k.split(".")[0] in {"classifier", "fc"}}
        classifier = {k for k in classifier if k.rsplit(".", 1)[0] in self.encoder.classifier_keys}
        missing, unexpected = expected - set(state), set(state) - expected - classifier
        if missing or unexpected:
            raise ValueError(
                f"{path}: not a torchvision {self.backbone} state dict: missing keys [{_summarise(missing)}]; "
                f"unexpected keys [{_summarise(unexpected)}]"
            )
        encoder_state = {key: state[key] for key in expected}
        first = self.encoder.first_conv_key
        if encoder_state[first].shape[1] == 3 and self.in_channels == 1:
            encoder_state[first] = encoder_state[first].sum(1, keepdim=True)
        own = self.encoder.state_dict()
        wrong = [
            f"{k} {tuple(encoder_state[k].shape)} (expected {tuple(own[k].shape)})"
            for k in sorted(expected)
            if encoder_state[k].shape != own[k].shape
        ]
        if wrong:
            raise ValueError(f"{path}: tensor shapes do not match the {self.backbone} encoder: {'; '.join(wrong)}")
        self.encoder.load_state_dict(encoder_state, strict=True)
        self._load_classifier(state, path)

    def _load_classifier(self, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
        """fc6/fc7 from torchvision's fully connected layers, reshaped to convolutions, when the shapes allow."""
        convs = [self.head.fc6] + ([self.head.fc7] if hasattr(self.head, "fc7") else [])
        for conv, layer in zip(convs, self._classifier_layers):
            weight, bias = state.get(f"{layer}.weight"), state.get(f"{layer}.bias")
            if weight is None or bias is None:
                continue
            if weight.numel() != conv.weight.numel() or bias.shape != conv.bias.shape:
                warnings.warn(
                    f"{path}: {layer} {tuple(weight.shape)} does not fit {tuple(conv.weight.shape)}; "
                    "that layer keeps its random initialisation",
                    stacklevel=3,
                )
                continue
            with torch.no_grad():
                conv.weight.copy_(weight.reshape(conv.weight.shape))
                conv.bias.copy_(bias)

    def train(self, mode: bool = True) -> FCN32s:
        """As ``nn.Module.train``, keeping the batch norms of frozen encoder blocks in eval mode."""
        super().train(mode)
        for block in getattr(self, "frozen_blocks", []):
            for module in block.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if validating() and (x.ndim != 4 or x.shape[1] != self.in_channels):
            raise ValueError(
                f"FCN32s expects input (batch, {self.in_channels}, height, width), got shape {tuple(x.shape)}"
            )
        return run_padded(self._forward, x, self.size_multiple, self.pad_input, f"FCN32s({self.backbone})")

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.score(self.head(self.encoder(x)))
        return self.upscore(scores)[..., : x.shape[-2], : x.shape[-1]]
