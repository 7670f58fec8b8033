"""Helpers shared by the networks: spatial-size requirements, explicit padding and parameter counts."""

from __future__ import annotations

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


def check_spatial_multiple(x: torch.Tensor, multiple: int, network: str) -> None:
    """Raise a ``ValueError`` naming the shape and the requirement when H or W is not a multiple of ``multiple``."""
    if not validating():
        return
    if x.ndim != 4:
        raise ValueError(f"{network} expects a (batch, channels, height, width) tensor, got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(
            f"{network} needs height and width that are multiples of {multiple}, got input shape {tuple(x.shape)}; "
            f"pad the input (e.g. monai.transforms.DivisiblePad(k={multiple})) or build the network with pad_input=True"
        )


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad H and W at the bottom/right up to the next multiple; return the padded tensor and the original size."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not validating() or pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x, (height, width)


def run_padded(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int, pad_input: bool, network: str
) -> torch.Tensor:
    """Run ``forward`` on ``x`` padded to ``multiple`` (``pad_input``) and crop back, or check the size and run."""
    if not pad_input:
        check_spatial_multiple(x, multiple, network)
        return forward(x)
    padded, (height, width) = pad_to_multiple(x, multiple)
    return forward(padded)[..., :height, :width]


def count_parameters(module_or_factory: nn.Module | Callable[[], nn.Module], trainable_only: bool = False) -> int:
    """Number of parameters of a module; a zero-argument factory is built on the ``meta`` device (no memory)."""
    if isinstance(module_or_factory, nn.Module):
        module = module_or_factory
    else:
        with torch.device("meta"):
            module = module_or_factory()
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
