"""Networks by name, for MONAI bundle configs and the command line: ``get_network("segcaps_r3")``.

medseg's networks take their paper defaults; MONAI's ``UNet``, ``BasicUNet`` and ``AttentionUnet`` get 2D
defaults for this project's one-channel binary tasks (any keyword argument overrides them):

=================  =========================================================================================
``unet``           ``monai.networks.nets.UNet(spatial_dims=2, in_channels=1, out_channels=1,
                   channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2), num_res_units=2)``
``basicunet``      ``monai.networks.nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=1)``
``attentionunet``  ``monai.networks.nets.AttentionUnet(spatial_dims=2, in_channels=1, out_channels=1,
                   channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2))``
=================  =========================================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from monai.networks.nets import AttentionUnet, BasicUNet, UNet
from torch import nn

from .fcdensenet import FCDenseNet
from .fcn import FCN32s
from .segcaps import SegCapsBasic, SegCapsR1, SegCapsR3
from .unet import UNet2D

__all__ = ["NETWORKS", "get_network"]

_MONAI_2D = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1}
_LEVELS = {"channels": (32, 64, 128, 256, 512), "strides": (2, 2, 2, 2)}

NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "segcaps_r3": SegCapsR3,
    "segcaps_r1": SegCapsR1,
    "segcaps_basic": SegCapsBasic,
    "bfcn32s": partial(FCN32s, backbone="vgg16"),
    "fcresnet": partial(FCN32s, backbone="resnet50"),
    "fcn32s_alexnet": partial(FCN32s, backbone="alexnet"),
    "unet2d": UNet2D,
    "fcdensenet56": partial(FCDenseNet, variant=56),
    "fcdensenet67": partial(FCDenseNet, variant=67),
    "fcdensenet103": partial(FCDenseNet, variant=103),
    "unet": partial(UNet, **_MONAI_2D, **_LEVELS, num_res_units=2),
    "basicunet": partial(BasicUNet, **_MONAI_2D),
    "attentionunet": partial(AttentionUnet, **_MONAI_2D, **_LEVELS),
}


def get_network(name: str, **kwargs: Any) -> nn.Module:
    """Build the network registered as ``name`` (see :data:`NETWORKS`), keyword arguments overriding its defaults.

    Raises:
        ValueError: when ``name`` is not registered; the message lists the valid names.
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; valid names: {', '.join(sorted(NETWORKS))}")
    return NETWORKS[name](**kwargs)
