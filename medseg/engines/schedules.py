"""Learning-rate schedules for training under a budget of epochs or wall-clock minutes."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from .handlers.budget import WallClockBudget

__all__ = ["BudgetCosineLR"]


class BudgetCosineLR(LRScheduler):
    """Cosine annealing (Loshchilov & Hutter, SGDR, ICLR 2017) over the training budget, stepped every iteration.

    ``lr = lr_0 (r + (1 - r) (1 + cos(pi p)) / 2)``, with ``r = min_lr_ratio`` and ``p`` in [0, 1] the spent share
    of the budget: the larger of the wall-clock share (``budget``, agreed over the ranks) and the share of the
    ``max_epochs * epoch_length`` iterations. PyTorch's ``CosineAnnealingLR`` needs the number of steps in
    advance, which a wall-clock budget does not give; this one reads the budget's clock, so a 10-minute run
    ends with a small learning rate whatever the machine's speed.

    Step it after every iteration (MONAI's ``LrScheduleHandler`` with ``epoch_level=False``). Its state (the
    steps taken) and the budget's (the time spent) are both saved in the last-state checkpoint, so ``--resume``
    continues the curve.

    Args:
        optimizer: the wrapped optimizer; its learning rates are ``lr_0``.
        budget: the training's :class:`~medseg.engines.WallClockBudget` (its ``minutes`` may be ``None``).
        max_epochs: the most epochs of the training.
        epoch_length: iterations per epoch (``len(train_loader)``).
        min_lr_ratio: ``r``, the final learning rate over the initial one.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        budget: WallClockBudget,
        max_epochs: int,
        epoch_length: int,
        min_lr_ratio: float = 0.01,
        last_epoch: int = -1,
    ) -> None:
        if max_epochs < 1 or epoch_length < 1:
            raise ValueError(f"max_epochs and epoch_length must be positive, got {max_epochs} and {epoch_length}")
        if not 0 <= min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
        self.budget, self.total_steps, self.min_lr_ratio = budget, max_epochs * epoch_length, min_lr_ratio
        super().__init__(optimizer, last_epoch)

    def progress(self) -> float:
        """The spent share of the budget: steps taken, or wall-clock time, whichever is further."""
        return min(1.0, max(max(self.last_epoch, 0) / self.total_steps, self.budget.progress()))

    def get_lr(self) -> list[float]:
        factor = self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * self.progress()))
        return [base * factor for base in self.base_lrs]

    def state_dict(self) -> dict:
        return {key: value for key, value in super().state_dict().items() if key != "budget"}
