"""What a loss comparison runs: the grid of (network, loss, fold) runs and the bundle settings of each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["METRICS", "Comparison", "Run"]


#: Reported metrics: name in the evaluation summary -> (column title, higher is better).
METRICS: dict[str, tuple[str, bool]] = {
    "test_mean_dice": ("Dice", True),
    "test_mean_iou": ("IoU", True),
    "test_accuracy": ("pixel accuracy", True),
    "test_kappa": ("Cohen's kappa", True),
    "test_hd95": ("95 % Hausdorff distance (pixels)", False),
    "best_epoch": ("epoch of convergence", False),
}


@dataclass(frozen=True)
class Run:
    """One training and evaluation of the comparison."""

    network: str
    loss: str
    fold: int

    def folder(self, out: Path) -> Path:
        return out / "runs" / self.network / self.loss / f"fold{self.fold}"

    @property
    def label(self) -> str:
        return f"{self.network} {self.loss} fold {self.fold}"


@dataclass
class Comparison:
    """What to compare and how.

    Args:
        bundle: the bundle folder whose configs train and evaluate every run.
        datalist: a ``medseg prepare`` datalist with its folds.
        losses, networks: registry names (``networks`` empty: the bundle's default network).
        folds: the folds to run (0 .. folds - 1).
        out: the comparison's folder.
        baseline: the loss the others are tested against.
        epochs, minutes: the training budget of each run (``minutes``: wall clock, stops cleanly).
        device: ``cpu`` or ``cuda``; with ``jobs`` > 1 on CUDA, job ``i`` runs on GPU ``i`` modulo the GPUs.
        jobs: runs at a time, each pinned to one device (CPU: the cores shared out).
        overrides: more bundle settings for every run (e.g. ``{"image_size": 128}``).
    """

    bundle: Path
    datalist: Path
    losses: list[str]
    out: Path
    networks: list[str] = field(default_factory=list)
    folds: int = 4
    baseline: str = "bce"
    epochs: int | None = None
    minutes: float | None = None
    device: str = "cpu"
    jobs: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> list[Run]:
        networks = self.networks or [None]
        return [
            Run(net or "default", loss, fold) for net in networks for loss in self.losses for fold in range(self.folds)
        ]

    def settings(self, run: Run) -> dict[str, Any]:
        """The bundle overrides of ``run``: the same settings for every run but its loss, network and fold."""
        settings = {
            "datalist": self.datalist.resolve(),
            "fold": run.fold,
            "loss_name": run.loss,
            "output_dir": run.folder(self.out).resolve(),
            "official_splits": False,
            "resume": True,
            "device": self.device,
            "epochs": self.epochs,
            "minutes": self.minutes,
            **self.overrides,
        }
        if run.network != "default":
            settings["network_name"] = run.network
        return settings
