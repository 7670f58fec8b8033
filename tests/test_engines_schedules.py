"""The learning-rate schedule over a budget, against PyTorch's own cosine annealing and its closed form."""

from __future__ import annotations

import io
import math

import pytest
import torch

from medseg.bundle import check_training, lr_scheduler
from medseg.engines import BudgetCosineLR, WallClockBudget
from medseg.pipeline import SettingsError

# the schedulers are stepped alone here, without an optimizer step
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of .lr_scheduler.step")


def _optimizer(lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_epoch_budget_follows_torch_cosine_annealing():
    """Without minutes, the curve is PyTorch's ``CosineAnnealingLR`` over every iteration, to 1 % of the rate."""
    epochs, epoch_length = 3, 5
    ours = BudgetCosineLR(_optimizer(), WallClockBudget(None), epochs, epoch_length)
    reference_optimizer = _optimizer()
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(
        reference_optimizer, T_max=epochs * epoch_length, eta_min=1e-5
    )
    for _ in range(epochs * epoch_length):
        assert ours.get_last_lr()[0] == pytest.approx(reference.get_last_lr()[0], rel=1e-9)
        ours.step()
        reference.step()
    assert ours.get_last_lr()[0] == pytest.approx(1e-5)


def test_wall_clock_budget_sets_the_progress():
    budget = WallClockBudget(minutes=10)
    scheduler = BudgetCosineLR(_optimizer(), budget, max_epochs=1000, epoch_length=10)
    for share in (0.25, 0.5, 0.9, 1.5):
        budget.spent = share * 600
        scheduler.step()
        expected = 1e-3 * (0.01 + 0.99 * (1 + math.cos(math.pi * min(share, 1))) / 2)
        assert scheduler.get_last_lr()[0] == pytest.approx(expected, rel=1e-9)


def test_state_loads_with_weights_only_and_continues():
    scheduler = BudgetCosineLR(_optimizer(), WallClockBudget(None), max_epochs=2, epoch_length=4)
    for _ in range(3):
        scheduler.step()
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    resumed = BudgetCosineLR(_optimizer(), WallClockBudget(None), max_epochs=2, epoch_length=4)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    resumed.step()
    expected = 1e-3 * (0.01 + 0.99 * (1 + math.cos(math.pi * 4 / 8)) / 2)
    assert resumed.get_last_lr()[0] == pytest.approx(expected, rel=1e-9)


def test_bundle_schedule_names(tmp_path):
    common = {"optimizer": _optimizer(), "budget": WallClockBudget(None), "max_epochs": 10, "epoch_length": 5,
              "factor": 0.5, "patience": 3}  # fmt: skip
    plateau = lr_scheduler(schedule="plateau", **common)
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau) and plateau.factor == 0.5
    assert isinstance(lr_scheduler(schedule="cosine", **common), BudgetCosineLR)
    with pytest.raises(ValueError, match=r"unknown schedule 'step'.*plateau.*cosine"):
        lr_scheduler(schedule="step", **common)
    # a bundle refuses the name before anything is built
    training = {"epochs": 1, "minutes": None, "batch_size": 4, "val_interval": 1, "lr_schedule": "plateau",
                "model_selection": "best", "model_average": 1}  # fmt: skip
    with pytest.raises(SettingsError, match=r"unknown --lr_schedule 'step'; valid: cosine, plateau"):
        check_training(**{**training, "lr_schedule": "step"})
