"""Input checks of every loss: no silently wrong value from a mis-scaled target, a NaN or an empty input.

A 0/255 mask with a correct prediction gives a soft IoU loss of −254, a BCE of −1012, a focal-Tversky loss of
0; a NaN anywhere gives NaN. :func:`check_loss_inputs` is the exact check: ``input`` finite and not empty,
``target`` finite and in [0, 1] (or class indices in [0, C − 1] when a one-channel target meets a ``C``-channel
input, MONAI's ``to_onehot_y``), raising a ``ValueError`` that names the problem. It reads both tensors once
(``torch.aminmax``), which costs 10-25 % of a loss's own forward and backward pass on the CPU.

:func:`add_input_checks` puts it around a loss's ``forward`` (forward hooks, so MONAI's losses keep their class)
at a cost the loss benchmark does not see:

- every call: the shapes (at least ``(B, C, one spatial axis)``, no empty axis), free;
- the first :data:`EXACT_CHECK_CALLS` calls of each loss object (a training run's first batches): the exact
  check, which finds a data set whose masks are scaled wrongly or a network that starts with NaN;
- every later call: a check on the reduced value, the loss itself. A NaN or an infinite input or target makes
  it NaN or infinite, and a target outside [0, 1] makes it negative as soon as the prediction follows the target,
  since every loss here is non-negative on valid inputs; such a value triggers the exact check, which raises
  naming the problem (or, when the inputs turn out valid, lets the value through).

What the reduced value cannot reveal after the first calls: an infinite logit that a sigmoid saturates (the
loss is finite and equal to that of a large logit) and a target outside [0, 1] while the loss stays non-negative
(an early, poor prediction). Set ``loss.input_checks.exact_left = math.inf`` to run the exact check on every call.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["EXACT_CHECK_CALLS", "InputChecks", "add_input_checks", "check_loss_inputs", "check_loss_shapes"]

#: Calls of each loss object that run the exact check :func:`check_loss_inputs`.
EXACT_CHECK_CALLS = 10


def _count_bad(tensor: torch.Tensor) -> str:
    nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
    return f"{nan} NaN and {inf} infinite value(s) among {tensor.numel()}"


def check_loss_shapes(input: torch.Tensor, target: torch.Tensor) -> None:
    """Raise a ``ValueError`` unless ``input`` is ``(B, C, spatial...)`` and neither tensor is empty."""
    if input.dim() < 3:
        raise ValueError(f"input must have shape (B, C, spatial...), got {tuple(input.shape)}.")
    if input.numel() == 0 or target.numel() == 0:
        raise ValueError(
            f"empty input {tuple(input.shape)} or target {tuple(target.shape)}: a loss needs at least one element "
            "in the batch and along every spatial axis."
        )


def check_loss_inputs(input: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None) -> None:
    """Raise a ``ValueError`` naming the problem unless ``input`` and ``target`` make a meaningful loss.

    - :func:`check_loss_shapes`;
    - every element of ``input`` is finite;
    - ``target`` is finite and in [0, 1] (probabilities or a 0/1 mask), or, when it has one channel for a
      multi-channel ``input``, holds class indices in [0, C − 1] (``to_onehot_y``); values equal to
      ``ignore_index`` (MONAI's losses) are allowed.

    Cost: ``torch.aminmax`` of each tensor and one host synchronisation for the four values; the tensors are read
    again only to describe a failure.
    """
    check_loss_shapes(input, target)
    index_target = target.dim() == input.dim() and target.shape[1] == 1 and input.shape[1] > 1
    high = input.shape[1] - 1 if index_target else 1
    target = target.detach()
    if ignore_index is not None:
        target = torch.where(target == ignore_index, torch.zeros_like(target), target)
    extrema = [value.double() for value in (*torch.aminmax(input.detach()), *torch.aminmax(target))]
    input_min, input_max, target_min, target_max = torch.stack(extrema).tolist()
    if not (math.isfinite(input_min) and math.isfinite(input_max)):
        raise ValueError(f"input (the network output) has {_count_bad(input.detach())}.")
    if not (math.isfinite(target_min) and math.isfinite(target_max)):
        raise ValueError(f"target has {_count_bad(target)}.")
    if target_min < 0 or target_max > high:
        found = f"found values from {target_min:g} to {target_max:g}"
        if index_target:
            raise ValueError(
                f"target class indices must be in [0, {high}] for {input.shape[1]} channels (to_onehot_y), {found}."
            )
        hint = f"; a 0/{target_max:g} mask? Binarise it to 0/1" if target_min == 0 and target_max > 1 else ""
        raise ValueError(f"target values must be in [0, 1] (probabilities or a 0/1 mask), {found}{hint}.")


def _ignore_index(loss: nn.Module) -> int | None:
    """MONAI's ``ignore_index`` of a loss, of the loss it wraps (``.loss``) or of its Dice term (``.dice``)."""
    for module in (loss, getattr(loss, "loss", None), getattr(loss, "dice", None)):
        if getattr(module, "ignore_index", None) is not None:
            return module.ignore_index
    return None


def _arguments(args: tuple, kwargs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input, target)`` of a loss call, given by position or by name."""
    input = args[0] if args else kwargs["input"]
    target = args[1] if len(args) > 1 else kwargs["target"]
    return input, target


class InputChecks:
    """The checks of one loss object, as its forward pre-hook and forward hook (see the module docstring).

    Attributes:
        exact_left: calls that still run the exact check (``math.inf``: every call).
    """

    def __init__(self, exact_calls: float = EXACT_CHECK_CALLS) -> None:
        self.exact_left = exact_calls
        self.exact_now = False

    def before(self, loss: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        input, target = _arguments(args, kwargs)
        check_loss_shapes(input, target)
        self.exact_now = self.exact_left > 0
        if self.exact_now:
            self.exact_left -= 1
            check_loss_inputs(input, target, _ignore_index(loss))

    def after(self, loss: nn.Module, args: tuple, kwargs: dict[str, Any], output: torch.Tensor) -> None:
        if self.exact_now:
            return
        value = output.detach()
        if value.dim():
            low, high = torch.stack(torch.aminmax(value)).double().tolist()
        else:
            low = high = float(value)
        if not (math.isfinite(low) and math.isfinite(high) and low >= 0):
            check_loss_inputs(*_arguments(args, kwargs), _ignore_index(loss))


def add_input_checks(loss: nn.Module, exact_calls: float = EXACT_CHECK_CALLS) -> nn.Module:
    """Check the inputs of every call of ``loss`` (see the module docstring); returns ``loss`` itself.

    Args:
        loss: a loss called as ``loss(input, target)``; it keeps its class (forward hooks do the checks), and gets
            an ``input_checks`` attribute (:class:`InputChecks`).
        exact_calls: how many calls run the exact check :func:`check_loss_inputs` (``math.inf``: every call).
    """
    loss.input_checks = InputChecks(exact_calls)
    loss.register_forward_pre_hook(loss.input_checks.before, with_kwargs=True)
    loss.register_forward_hook(loss.input_checks.after, with_kwargs=True)
    return loss
