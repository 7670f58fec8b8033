"""The learning-rate schedule a bundle's ``--lr_schedule`` names."""

from __future__ import annotations

import torch

from medseg.engines import BudgetCosineLR, WallClockBudget

__all__ = ["LR_SCHEDULES", "lr_scheduler"]

#: ``--lr_schedule`` values: what each does to the learning rate.
LR_SCHEDULES = {
    "plateau": "multiplied by lr_factor after lr_patience validations without a better Dice (the papers')",
    "cosine": "cosine from the initial rate to 1 % of it over the budget (--minutes, else --epochs)",
}


def lr_scheduler(
    *,
    schedule: str,
    optimizer: torch.optim.Optimizer,
    budget: WallClockBudget,
    max_epochs: int,
    epoch_length: int,
    factor: float,
    patience: int,
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """PyTorch's ``ReduceLROnPlateau`` on validation Dice (``"plateau"``), or :class:`BudgetCosineLR` (``"cosine"``).

    The configs step the first after each validation and the second after each training iteration.
    """
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=factor, patience=patience)
    if schedule == "cosine":
        return BudgetCosineLR(optimizer, budget, max_epochs, epoch_length)
    valid = "; ".join(f"{name}: {meaning}" for name, meaning in LR_SCHEDULES.items())
    raise ValueError(f"unknown schedule {schedule!r}; valid: {valid}")
