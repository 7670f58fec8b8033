"""Networks by name, for MONAI bundle configs and the command line: ``get_network("segcaps_r3")``.

Each entry (:class:`NetworkSpec`) records what the network outputs: ``"logits"`` (apply a sigmoid, or a
loss with ``sigmoid=True``) or ``"probabilities"`` (SegCaps' capsule lengths), which
:func:`medseg.losses.get_loss` and the post-processing read instead of branching on names.

medseg's networks take their paper defaults; MONAI's ``UNet``, ``BasicUNet`` and ``AttentionUnet`` get 2D
defaults for this project's one-channel binary tasks (any keyword argument overrides them):

=================  =========================================================================================
``unet``           ``monai.networks.nets.UNet(spatial_dims=2, in_channels=1, out_channels=1,
                   channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2), num_res_units=2)``
``basicunet``      ``monai.networks.nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=1)``
``attentionunet``  ``monai.networks.nets.AttentionUnet(spatial_dims=2, in_channels=1, out_channels=1,
                   channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2))``
=================  =========================================================================================

Every network follows one size policy (:mod:`medseg.networks.utils`): an input whose spatial sizes are not
multiples of its ``size_multiple`` raises a ``ValueError`` unless the network is built with
``pad_input=True``. MONAI's three U-Nets would otherwise return an output of another size than the input
(a 31×31 input gives 32×32) without an error, so the registry builds them as the subclasses below, which
add that policy and nothing else (their state dicts are MONAI's).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from monai.networks.layers import split_args
from monai.networks.nets import AttentionUnet, BasicUNet, UNet
from torch import nn

from .fcdensenet import FCDenseNet
from .fcn import FCN32s
from .segcaps import SegCapsBasic, SegCapsR1, SegCapsR3
from .unet import UNet2D
from .utils import run_padded

__all__ = [
    "NETWORKS",
    "NetworkSpec",
    "PaddedAttentionUnet",
    "PaddedBasicUNet",
    "PaddedUNet",
    "get_network",
    "network_output",
    "unknown_arguments",
]


class _SizePolicy(nn.Module):
    """Mixin for a MONAI network: the registry's size policy around its ``forward``.

    Subclasses set :attr:`size_multiple` from the network's own arguments; ``pad_input`` is taken here. A network
    whose ``norm`` is instance normalisation (MONAI's default for ``UNet`` and ``BasicUNet``) also needs two pixels
    at its deepest level (:attr:`min_blocks`, see :mod:`medseg.networks.utils`).
    """

    size_multiple: int

    def __init__(self, *args: Any, pad_input: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base = next(cls for cls in type(self).__mro__ if cls.__module__.startswith("monai."))
        arguments = inspect.signature(base.__init__).bind(self, *args, **kwargs)
        arguments.apply_defaults()
        self.spatial_dims = int(arguments.arguments["spatial_dims"])
        self.pad_input = pad_input
        norm = arguments.arguments.get("norm")
        instance_norm = norm is not None and str(split_args(norm)[0]).lower().startswith("instance")
        self.min_blocks = 2 if instance_norm else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__.removeprefix("Padded")
        return run_padded(
            super().forward, x, self.size_multiple, self.pad_input, name, self.spatial_dims, self.min_blocks
        )


def _strides_product(strides: Sequence) -> int:
    return math.prod(int(math.prod(s)) if isinstance(s, (list, tuple)) else int(s) for s in strides)


class PaddedUNet(_SizePolicy, UNet):
    """``monai.networks.nets.UNet`` with the size policy: sizes must be multiples of the product of the strides."""

    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        return _strides_product(self.strides)


class PaddedBasicUNet(_SizePolicy, BasicUNet):
    """``monai.networks.nets.BasicUNet`` with the size policy: four poolings, sizes multiples of 16."""

    size_multiple = 16


class PaddedAttentionUnet(_SizePolicy, AttentionUnet):
    """``monai.networks.nets.AttentionUnet`` with the size policy: sizes multiples of the product of the strides."""

    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        return _strides_product(self.strides)


@dataclass(frozen=True)
class NetworkSpec:
    """A registered network: how to build it, and what its raw output is (``"logits"`` or ``"probabilities"``)."""

    factory: Callable[..., nn.Module]
    description: str
    output: str = "logits"


_MONAI_2D = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1}
_LEVELS = {"channels": (32, 64, 128, 256, 512), "strides": (2, 2, 2, 2)}

#: Registered names and what they build.
NETWORKS: dict[str, NetworkSpec] = {
    "segcaps_r3": NetworkSpec(SegCapsR3, "SegCaps with 3 routing iterations (LaLonde & Bagci 2018)", "probabilities"),
    "segcaps_r1": NetworkSpec(SegCapsR1, "SegCaps with 1 routing iteration", "probabilities"),
    "segcaps_basic": NetworkSpec(SegCapsBasic, "SegCaps' baseline capsule network", "probabilities"),
    "bfcn32s": NetworkSpec(partial(FCN32s, backbone="vgg16"), "FCN-32s on VGG-16 (van Beers et al.)"),
    "fcresnet": NetworkSpec(partial(FCN32s, backbone="resnet50"), "FCN-32s on ResNet-50 (van Beers et al.)"),
    "fcn32s_alexnet": NetworkSpec(partial(FCN32s, backbone="alexnet"), "FCN-32s on AlexNet (Rahman & Wang 2016)"),
    "unet2d": NetworkSpec(UNet2D, "the chest X-ray study's 2D U-Net"),
    "fcdensenet56": NetworkSpec(partial(FCDenseNet, variant=56), "FC-DenseNet56 (Jégou et al. 2017)"),
    "fcdensenet67": NetworkSpec(partial(FCDenseNet, variant=67), "FC-DenseNet67"),
    "fcdensenet103": NetworkSpec(partial(FCDenseNet, variant=103), "FC-DenseNet103"),
    "unet": NetworkSpec(partial(PaddedUNet, **_MONAI_2D, **_LEVELS, num_res_units=2), "MONAI UNet"),
    "basicunet": NetworkSpec(partial(PaddedBasicUNet, **_MONAI_2D), "MONAI BasicUNet"),
    "attentionunet": NetworkSpec(partial(PaddedAttentionUnet, **_MONAI_2D, **_LEVELS), "MONAI AttentionUnet"),
}


def get_network(name: str, **kwargs: Any) -> nn.Module:
    """Build the network registered as ``name`` (see :data:`NETWORKS`), keyword arguments overriding its defaults.

    Raises:
        ValueError: when ``name`` is not registered; the message lists the valid names.
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; valid names: {', '.join(sorted(NETWORKS))}")
    return NETWORKS[name].factory(**kwargs)


def network_output(name: str) -> str:
    """What the network registered as ``name`` returns: ``"logits"`` or ``"probabilities"``."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; valid names: {', '.join(sorted(NETWORKS))}")
    return NETWORKS[name].output


def unknown_arguments(name: str, **kwargs: Any) -> list[str]:
    """The keyword arguments of ``kwargs`` that the network registered as ``name`` does not take, found from the
    signatures of its classes (without building it: a network's initialisation draws from the random generator).

    Raises:
        ValueError: when ``name`` is not registered.
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; valid names: {', '.join(sorted(NETWORKS))}")
    factory = NETWORKS[name].factory
    target = factory.func if isinstance(factory, partial) else factory
    accepted: set[str] = set()
    for cls in inspect.getmro(target):  # up to the first constructor without **kwargs
        if "__init__" not in vars(cls):
            continue
        parameters = list(inspect.signature(vars(cls)["__init__"]).parameters.values())[1:]
        accepted |= {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return sorted(set(kwargs) - accepted)
