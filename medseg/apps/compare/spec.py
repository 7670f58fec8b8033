"""What a loss comparison runs: the grid of (network, loss, fold, seed) runs and the bundle settings of each."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from medseg.files import content_digest

__all__ = ["BACKENDS", "METRICS", "TESTED_METRICS", "Comparison", "Run", "metric_base", "metric_title"]


#: Reported metrics: name in the evaluation summary -> (column title, higher is better).
METRICS: dict[str, tuple[str, bool]] = {
    "test_mean_dice": ("Dice", True),
    "test_mean_iou": ("IoU", True),
    "test_accuracy": ("pixel accuracy", True),
    "test_kappa": ("Cohen's kappa", True),
    "test_hd95": ("95 % Hausdorff distance (pixels)", False),
    "test_ece": ("expected calibration error", False),
    "best_epoch": ("epoch of convergence", False),
}

#: The metrics whose per-case values are tested loss against baseline, with a verdict per loss.
TESTED_METRICS = ("test_mean_iou", "test_mean_dice")


def metric_base(name: str) -> str:
    """The metric of :data:`METRICS` that ``name`` is, or is the value of for one label (``test_mean_dice_hair``)."""
    return name if name in METRICS else next((base for base in METRICS if name.startswith(base + "_")), name)


def metric_title(name: str) -> str:
    """A metric's column title, with its label for a label's value: ``Dice (hair)``."""
    base = metric_base(name)
    return METRICS[base][0] + (f" ({name[len(base) + 1 :]})" if name != base else "")


#: The ``minutes`` of a run budgeted in epochs: no wall-clock budget (a bundle may have one by default).
NO_BUDGET = "$None"

#: Where the runs run: ``local`` (processes on this machine) or ``ray`` (a task each on a Ray cluster).
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Run:
    """One training and evaluation of the comparison."""

    network: str
    loss: str
    fold: int
    seed: int = 0

    def folder(self, out: Path) -> Path:
        return out / "runs" / self.network / self.loss / f"fold{self.fold}" / f"seed{self.seed}"

    @classmethod
    def of(cls, record: dict[str, Any]) -> Run:
        """The run a record (``record.json``) is of."""
        return cls(record["network"], record["loss"], record["fold"], record.get("seed", 0))

    @property
    def label(self) -> str:
        return f"{self.network} {self.loss} fold {self.fold} seed {self.seed}"


@dataclass
class Comparison:
    """What to compare and how.

    Args:
        bundle: the bundle folder whose configs train and evaluate every run.
        datalist: a ``medseg prepare`` datalist with its folds.
        losses, networks: registry names (``networks`` empty: the bundle's default network).
        folds: the folds to run (0 .. folds - 1).
        seeds: the bundle's ``seed`` of each repeat (initial weights, shuffling, augmentation): every
            (network, loss, fold) runs once per seed.
        out: the comparison's folder.
        baseline: the loss the others are tested against.
        epochs, minutes: the training budget of each run (``minutes``: wall clock, stops cleanly).
        device: ``cpu`` or ``cuda``; with ``jobs`` > 1 on CUDA, job ``i`` runs on GPU ``i`` modulo the GPUs.
        jobs: runs at a time on the local backend, each pinned to one device (CPU: the cores shared out).
        overrides: more bundle settings for every run (e.g. ``{"spatial_size": [128, 128]}``).
        backend: one of :data:`BACKENDS`.
        address: the Ray cluster to join (``HOST:PORT`` or ``auto``); ``None`` starts a Ray instance on this
            machine for the comparison's lifetime.
        cpus_per_run: the CPU threads of each run; ``None``: the local backend shares this machine's cores out
            among its ``jobs``, a Ray task takes 1.
        gpus_per_run: each Ray task's share of a node's GPUs (``0.25``: four runs per GPU).
        label: for models of several labels, the label whose IoU and Dice the verdicts are on (``None``: their
            mean over the labels); it does not change the runs.
    """

    bundle: Path
    datalist: Path
    losses: list[str]
    out: Path
    networks: list[str] = field(default_factory=list)
    folds: int = 4
    seeds: list[int] = field(default_factory=lambda: [0])
    baseline: str = "bce"
    epochs: int | None = None
    minutes: float | None = None
    device: str = "cpu"
    jobs: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)
    backend: str = "local"
    address: str | None = None
    cpus_per_run: float | None = None
    gpus_per_run: float = 0.0
    label: str | None = None

    @property
    def tested_metrics(self) -> tuple[str, ...]:
        """The metrics the verdicts are on: :data:`TESTED_METRICS`, or their values for :attr:`label`."""
        return tuple(f"{name}_{self.label}" for name in TESTED_METRICS) if self.label else TESTED_METRICS

    def runs(self) -> list[Run]:
        networks = self.networks or ["default"]
        return [
            Run(network, loss, fold, seed)
            for network in networks
            for loss in self.losses
            for fold in range(self.folds)
            for seed in self.seeds
        ]

    @property
    def budget(self) -> str:
        """The training budget of each run, in words."""
        if self.minutes:
            return f"{self.minutes:g} min"
        return f"{self.epochs} epoch(s)" if self.epochs else "the bundle's epochs"

    @cached_property
    def _bundle_loss(self) -> str:
        """The loss the bundle trains with by default (its ``loss_kwargs`` are that loss's)."""
        from medseg.bundle import read_config

        return read_config(self.bundle, "train").get("loss_name")

    @cached_property
    def _inputs(self) -> dict[str, str]:
        """The digests of what every run reads besides its settings: the bundle's configs and the datalist."""
        return {"bundle_configs": content_digest(self.bundle / "configs"), "datalist": content_digest(self.datalist)}

    def identity(self, run: Run) -> dict[str, Any]:
        """What makes ``run``'s results what they are: its bundle settings (but where it writes), the content of
        the bundle's configs and of the datalist. A run folder is resumed or reused only for the same identity."""
        settings = {k: v for k, v in self.settings(run).items() if k not in ("output_dir", "resume", "datalist")}
        return {**self._inputs, "settings": json.loads(json.dumps(settings, default=str))}

    def settings(self, run: Run, folder: Path | None = None) -> dict[str, Any]:
        """The bundle overrides of ``run`` (its outputs in ``folder``, by default :meth:`Run.folder`): the same
        settings for every run but its loss, network, fold and seed. A network or loss other than the bundle's own
        is built with its registry defaults (the bundle's ``network_kwargs`` and ``loss_kwargs`` are its own
        network's and loss's), unless ``overrides`` give arguments."""
        settings = {
            "datalist": self.datalist.resolve(),
            "fold": run.fold,
            "seed": run.seed,
            "loss_name": run.loss,
            "output_dir": (folder or run.folder(self.out)).resolve(),
            "official_splits": False,
            "resume": True,
            "device": self.device,
            "epochs": self.epochs,
            # without --minutes no wall-clock budget, not the bundle's default one (a None override is dropped by
            # monai.bundle's command line; MONAI's expression ``$None`` is not)
            "minutes": self.minutes or NO_BUDGET,
        }
        if run.network != "default":  # another network: its registry defaults, not the bundle network's arguments
            settings["network_name"], settings["network_kwargs"] = run.network, {}
        if run.loss != self._bundle_loss:  # likewise the bundle's loss arguments are its own loss's
            settings["loss_kwargs"] = {}
        return {**settings, **self.overrides}
