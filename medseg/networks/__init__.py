"""Segmentation networks: SegCaps, the FCN-32s family, a 2D U-Net, FC-DenseNet, and a registry by name."""

from .backbones import AlexNetEncoder, ResNet50Encoder, VGG16Encoder
from .capsules import CapsuleConv2d, CapsuleConvTranspose2d, dynamic_routing, squash
from .fcdensenet import FCDENSENET_VARIANTS, FCDenseNet
from .fcn import FCN32s, bilinear_kernel
from .registry import (
    NETWORKS,
    NetworkSpec,
    PaddedAttentionUnet,
    PaddedBasicUNet,
    PaddedUNet,
    get_network,
    network_output,
    unknown_arguments,
)
from .segcaps import SegCapsBasic, SegCapsR1, SegCapsR3
from .unet import UNet2D
from .utils import check_spatial_multiple, count_parameters, pad_to_multiple

__all__ = [
    "FCDENSENET_VARIANTS",
    "NETWORKS",
    "AlexNetEncoder",
    "CapsuleConv2d",
    "CapsuleConvTranspose2d",
    "FCDenseNet",
    "FCN32s",
    "NetworkSpec",
    "PaddedAttentionUnet",
    "PaddedBasicUNet",
    "PaddedUNet",
    "ResNet50Encoder",
    "SegCapsBasic",
    "SegCapsR1",
    "SegCapsR3",
    "UNet2D",
    "VGG16Encoder",
    "bilinear_kernel",
    "check_spatial_multiple",
    "count_parameters",
    "dynamic_routing",
    "get_network",
    "network_output",
    "pad_to_multiple",
    "squash",
    "unknown_arguments",
]
