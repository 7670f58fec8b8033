"""Helpers shared by the networks: the spatial-size policy, explicit padding and parameter counts.

Size policy, the same for every network of the registry: a network whose output needs input sizes that are
multiples of ``k`` (``size_multiple``) raises a ``ValueError`` naming the input shape and ``k`` for any other
size, unless it was built with ``pad_input=True``; then it zero-pads the input at the bottom/right to the
next multiple and crops its output back to the input's size.

A network that normalises each image on its own (instance normalisation, MONAI's ``UNet`` and ``BasicUNet``)
also needs more than one pixel at its deepest level, 1/k of the input: ``min_blocks=2`` blocks of k×k in all
(an input of 16×16 for k = 16 fails in PyTorch's instance norm; 32×16 works). The check says so, and the padding
adds one more block along the last axis when the input would otherwise fit in one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["check_spatial_multiple", "count_parameters", "pad_to_multiple", "run_padded", "tracing", "validating"]


def tracing() -> bool:
    """Whether the forward pass is being recorded: ``torch.jit`` tracing or scripting, or ``torch.export``/compile."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()


def validating() -> bool:
    """Whether to check input shapes: not while ``torch.jit.trace`` records (shapes are then traced tensors)."""
    return not torch.jit.is_tracing()


def _blocks(sizes: tuple[int, ...], multiple: int) -> int:
    """How many ``multiple``-sized blocks the padded sizes make: the pixels of the network's deepest level."""
    return math.prod(-(-size // multiple) for size in sizes)


def check_spatial_multiple(
    x: torch.Tensor, multiple: int, network: str, spatial_dims: int = 2, min_blocks: int = 1
) -> None:
    """Raise a ``ValueError`` naming the shape and the requirement when a spatial size is not a multiple, or when
    the input makes fewer than ``min_blocks`` blocks of ``multiple`` (pixels at the deepest level)."""
    if not validating():
        return
    if x.ndim != spatial_dims + 2:
        axes = "height, width" + (", depth" if spatial_dims == 3 else "")
        raise ValueError(f"{network} expects a (batch, channels, {axes}) tensor, got shape {tuple(x.shape)}")
    if any(size % multiple for size in x.shape[2:]):
        what = "height and width" if spatial_dims == 2 else "spatial sizes"
        raise ValueError(
            f"{network} needs {what} that are multiples of {multiple}, got input shape {tuple(x.shape)}; "
            f"pad the input (e.g. monai.transforms.DivisiblePad(k={multiple})) or build the network with pad_input=True"
        )
    if _blocks(tuple(x.shape[2:]), multiple) < min_blocks:
        raise ValueError(
            f"{network} needs an input of at least {min_blocks} blocks of {multiple} pixels a side (its instance "
            f"normalisation needs more than one pixel at 1/{multiple} scale, e.g. {multiple}x{2 * multiple}), "
            f"got input shape {tuple(x.shape)}; pad the input or build the network with pad_input=True"
        )


def pad_to_multiple(
    x: torch.Tensor, multiple: int, spatial_dims: int = 2, min_blocks: int = 1
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Zero-pad the spatial axes at the end up to the next multiple (and, if the result makes fewer than
    ``min_blocks`` blocks of ``multiple``, the last axis by more blocks); return the padded tensor and the
    original size."""
    sizes = tuple(x.shape[-spatial_dims:])
    pads = [(-size) % multiple for size in sizes]
    blocks = _blocks(sizes, multiple)
    if blocks < min_blocks:  # widen the last axis: blocks * (1 + extra / its blocks) >= min_blocks
        last = -(-sizes[-1] // multiple)
        pads[-1] += multiple * (-(-min_blocks * last // blocks) - last)
    if not validating() or any(pads):
        x = F.pad(x, [amount for pad in reversed(pads) for amount in (0, pad)])
    return x, sizes


def run_padded(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    multiple: int,
    pad_input: bool,
    network: str,
    spatial_dims: int = 2,
    min_blocks: int = 1,
) -> torch.Tensor:
    """Run ``forward`` on ``x`` padded to ``multiple`` (``pad_input``) and crop back, or check the size and run."""
    if not pad_input:
        check_spatial_multiple(x, multiple, network, spatial_dims, min_blocks)
        return forward(x)
    padded, sizes = pad_to_multiple(x, multiple, spatial_dims, min_blocks)
    return forward(padded)[(..., *(slice(0, size) for size in sizes))]


def count_parameters(module_or_factory: nn.Module | Callable[[], nn.Module], trainable_only: bool = False) -> int:
    """Number of parameters of a module; a zero-argument factory is built on the ``meta`` device (no memory)."""
    if isinstance(module_or_factory, nn.Module):
        module = module_or_factory
    else:
        with torch.device("meta"):
            module = module_or_factory()
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
