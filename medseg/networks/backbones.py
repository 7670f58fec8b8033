"""ImageNet encoders in torchvision's module and state-dict layout, without depending on torchvision.

``VGG16Encoder`` (``features.*``), ``ResNet50Encoder`` (``conv1``, ``bn1``, ``layer1``…``layer4``) and
``AlexNetEncoder`` (``features.*``) hold exactly the parameters and buffers of torchvision's ``vgg16``,
``resnet50`` and ``alexnet`` minus their classifiers, under the same keys and shapes, so a state dict saved
from torchvision (``torch.save(torchvision.models.vgg16(weights=...).state_dict(), path)``) loads into
them. Each reduces the resolution by 32 exactly when the input size is a multiple of 32. AlexNet's first
convolution and max-poolings are padded ("same"-like: conv1 padding 5 instead of 2, poolings padding 1)
so that its output is H/32 rather than torchvision's valid-pooling size; the weights are unchanged (Long
et al.'s Caffe FCN-AlexNet pads the input by 100 pixels and crops instead).

``blocks()`` lists the encoder stages in order (VGG: 5 conv blocks; ResNet-50: stem, layer1–4;
AlexNet: its 5 convolutions with their poolings), for freezing all but the last as in van Beers et al.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AlexNetEncoder", "ResNet50Encoder", "VGG16Encoder"]

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16Encoder(nn.Module):
    """VGG-16 convolutional part (torchvision ``vgg16().features``): 13 3×3 convolutions, 5 max-poolings."""

    out_channels = 512
    first_conv_key = "features.0.weight"
    classifier_keys = ("classifier.0", "classifier.3", "classifier.6")

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)

    def blocks(self) -> list[nn.Module]:
        ends = [i + 1 for i, layer in enumerate(self.features) if isinstance(layer, nn.MaxPool2d)]
        return [self.features[start:end] for start, end in zip([0, *ends[:-1]], ends)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class AlexNetEncoder(nn.Module):
    """AlexNet convolutional part (torchvision ``alexnet().features`` keys), padded for an exact stride of 32."""

    out_channels = 256
    first_conv_key = "features.0.weight"
    classifier_keys = ("classifier.1", "classifier.4", "classifier.6")

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
        )

    def blocks(self) -> list[nn.Module]:
        return [self.features[0:3], self.features[3:6], self.features[6:8], self.features[8:10], self.features[10:13]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: 1×1, 3×3 (with the stride), 1×1 ×4, batch norms, projection shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet50Encoder(nn.Module):
    """ResNet-50 without its pooling and classifier (torchvision ``resnet50()`` keys): 2048 maps at stride 32."""

    out_channels = 2048
    first_conv_key = "conv1.weight"
    classifier_keys = ("fc",)

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        channels = 64
        for index, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
            layer = [_Bottleneck(channels, width, stride)]
            channels = width * _Bottleneck.expansion
            layer += [_Bottleneck(channels, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*layer))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def blocks(self) -> list[nn.Module]:
        return [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
