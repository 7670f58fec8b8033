"""Ignite handlers the bundles need beyond MONAI's: atomic metric reports, resumable state, a wall-clock budget,
the training record (one line per epoch, history JSON, curves PNG) and validation overlays.

Resuming a killed run needs more than network, optimizer, scheduler and trainer: the best metric so far, the
model saver's members (:class:`medseg.engines.WeightAverageSaver`), the early-stopping counter, the time already
spent and the history. :class:`LastStateSaver` writes all of them to one file every epoch, which MONAI's
``CheckpointLoader`` reads back (``weights_only=True``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader, EarlyStopHandler, MetricsSaver, from_engine
from monai.utils import convert_to_numpy

from medseg.files import atomic_path, umask_mode

__all__ = [
    "AtomicMetricsSaver",
    "BestMetricState",
    "LastStateSaver",
    "ResumableEarlyStop",
    "ResumeLoader",
    "TrainingReport",
    "ValidationOverlays",
    "WallClockBudget",
    "all_foreground_dice",
]

logger = logging.getLogger(__name__)


def _unwrap(module: Any) -> Any:
    """The module inside ``DistributedDataParallel``/``DataParallel``, so checkpoints load into a plain network."""
    return (
        module.module
        if isinstance(module, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel))
        else module
    )


def _is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class AtomicMetricsSaver(MetricsSaver):
    """MONAI's ``MetricsSaver`` (per-case CSVs and summaries) with every file written completely or not at all.

    MONAI writes the reports in place; here they are written into a hidden staging folder inside ``save_dir``
    and each file is then renamed into place, with the umask's permissions.
    """

    def __call__(self, engine: Engine) -> None:
        final = Path(self.save_dir)
        final.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=final, prefix=".metrics.") as staging:
            self.save_dir = staging
            try:
                super().__call__(engine)
            finally:
                self.save_dir = str(final)
            for path in Path(staging).iterdir():
                os.chmod(path, umask_mode())
                os.replace(path, final / path.name)


class ResumableEarlyStop(EarlyStopHandler):
    """MONAI's ``EarlyStopHandler`` whose counter and best score are saved with the last state."""

    def state_dict(self) -> dict:
        return dict(self._handler.state_dict()) if self._handler is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict and self._handler is not None:
            self._handler.load_state_dict(state_dict)


class BestMetricState:
    """The best key metric of an evaluator and its epoch, as a state dict (MONAI's engines do not save them)."""

    def __init__(self, evaluator: Engine) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict:
        return {
            "best_metric": float(self.evaluator.state.best_metric),
            "best_epoch": int(self.evaluator.state.best_metric_epoch),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.evaluator.state.best_metric = state_dict["best_metric"]
        self.evaluator.state.best_metric_epoch = state_dict["best_epoch"]


class LastStateSaver:
    """Write ``{name: obj.state_dict()}`` of ``save_dict`` to ``path`` after every epoch, atomically.

    The file is what ``--resume`` loads with MONAI's ``CheckpointLoader(load_path=path, load_dict=save_dict)``:
    network, optimizer, scheduler, trainer and the objects above. Only the main process writes.
    """

    def __init__(self, path: str | Path, save_dict: Mapping[str, Any]) -> None:
        self.path, self.save_dict = Path(path), dict(save_dict)

    def attach(self, engine: Engine) -> None:
        """Attach to the trainer, which is saved as ``"trainer"`` (a config cannot name it: it holds this handler)."""
        self.save_dict.setdefault("trainer", engine)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if not _is_main_process():
            return
        state = {name: _unwrap(obj).state_dict() for name, obj in self.save_dict.items()}
        with atomic_path(self.path) as temporary:
            torch.save(state, temporary)


class ResumeLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` for a :class:`LastStateSaver` file, loading the trainer it is attached to too."""

    def attach(self, engine: Engine) -> None:
        self.load_dict.setdefault("trainer", engine)
        super().attach(engine)


def _max_over_ranks(value: float) -> float:
    """``value`` under one process; its maximum over the ranks under ``torch.distributed``."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        flag = torch.tensor([float(value)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return float(flag.item())
    return value


class WallClockBudget:
    """Stop training cleanly when ``minutes`` of wall-clock time are spent (``None``: no budget).

    After each epoch (its validation included), training stops if another epoch of the mean length of the
    last three would overrun the budget; within an epoch after the first, it stops as soon as the budget is
    spent. The first epoch always completes, so that there is a validated best checkpoint. Time spent before a
    ``--resume`` counts (:meth:`state_dict`): a resumed run whose budget is already spent stops at once. Under
    ``torch.distributed`` the ranks agree on the decision (the slowest rank's clock wins), so that no rank
    waits for another that has stopped.
    """

    def __init__(self, minutes: float | None) -> None:
        if minutes is not None and not minutes > 0:
            raise ValueError(f"minutes must be positive or None, got {minutes}")
        self.budget = None if minutes is None else 60.0 * float(minutes)
        self.spent = 0.0
        self._started: float | None = None
        self._epoch_started = 0.0
        self._epochs: list[float] = []

    def attach(self, engine: Engine) -> None:
        if self.budget is None:
            return
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.EPOCH_STARTED, self._start_epoch)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._check_iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._check_epoch)

    def elapsed(self) -> float:
        return self.spent + (0.0 if self._started is None else time.perf_counter() - self._started)

    def state_dict(self) -> dict:
        return {"spent": self.elapsed()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.spent = float(state_dict.get("spent", 0.0))
        if self._started is not None:
            self._started = time.perf_counter()

    def _start(self, engine: Engine) -> None:
        self._started = time.perf_counter()
        if self.spent >= self.budget:
            self._stop(engine, "before this run (--resume)")

    def _start_epoch(self, engine: Engine) -> None:
        self._epoch_started = self.elapsed()

    def progress(self) -> float:
        """The spent share of the budget in [0, 1] (0 without a budget), the largest over the ranks."""
        if self.budget is None:
            return 0.0
        return min(1.0, _max_over_ranks(self.elapsed() / self.budget))

    @staticmethod
    def _agree(over: bool) -> bool:
        return bool(_max_over_ranks(float(over)))

    def _stop(self, engine: Engine, when: str) -> None:
        engine.logger.info(f"time budget of {self.budget / 60:g} min spent {when}: training stops, models kept")
        engine.state.budget_spent = True
        engine.terminate()

    def _check_iteration(self, engine: Engine) -> None:
        if self._epochs and self._agree(self.elapsed() > self.budget):
            self._stop(engine, f"during epoch {engine.state.epoch}")

    def _check_epoch(self, engine: Engine) -> None:
        now = self.elapsed()
        self._epochs.append(now - self._epoch_started)
        next_epoch = float(np.mean(self._epochs[-3:]))
        if not engine.should_terminate and self._agree(now + next_epoch > self.budget):
            self._stop(engine, f"after epoch {engine.state.epoch} (another would take {next_epoch:.0f} s)")


def all_foreground_dice(dataset: Sequence[Mapping], label_key: str = "label") -> float:
    """Mean Dice of the trivial predictor that calls every pixel foreground: ``2|G| / (N + |G|)`` per item."""
    scores = []
    for item in dataset:
        label = torch.as_tensor(item[label_key]) > 0
        foreground = float(label.sum())
        scores.append(2 * foreground / (label.numel() + foreground))
    return float(np.mean(scores)) if scores else float("nan")


class TrainingReport:
    """The training record: one line per epoch, ``history.json`` after each epoch, ``training_curves.png`` at the end.

    Each history row has the epoch, the mean training loss, the learning rate, the seconds since the start and
    the evaluator's metrics of that epoch (when it ran). The printed line shows the key metric beside
    ``baseline`` (e.g. the Dice of calling every pixel foreground), so that a user sees what was learnt.

    Args:
        evaluator: the validation engine whose metrics are recorded.
        optimizer: its first parameter group's learning rate is recorded.
        output_dir: where ``history.json`` and ``training_curves.png`` go (main process only).
        key_metric: the metric printed on each line.
        baseline: a reference value of the key metric, printed beside it.
        print_fn: where the lines go (default ``print``).
    """

    def __init__(
        self,
        evaluator: Engine,
        optimizer: torch.optim.Optimizer,
        output_dir: str | Path,
        key_metric: str = "val_mean_dice",
        baseline: float | None = None,
        print_fn: Callable[[str], None] = print,
    ) -> None:
        self.evaluator, self.optimizer, self.output_dir = evaluator, optimizer, Path(output_dir)
        self.key_metric, self.baseline, self.print_fn = key_metric, baseline, print_fn
        self.history: list[dict[str, float]] = []
        self.seconds_before = 0.0
        self._losses: list[float] = []
        self._start = time.perf_counter()

    @property
    def history_path(self) -> Path:
        return self.output_dir / "history.json"

    @property
    def figure_path(self) -> Path:
        return self.output_dir / "training_curves.png"

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._record_loss)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._record_epoch)
        engine.add_event_handler(Events.COMPLETED, self.save_figure)

    def state_dict(self) -> dict:
        return {"history": [dict(row) for row in self.history]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = [dict(row) for row in state_dict.get("history", [])]
        self.seconds_before = self.history[-1]["seconds"] if self.history else 0.0

    def _started(self, engine: Engine) -> None:
        self._start = time.perf_counter()
        if self.baseline is not None and _is_main_process():
            self.print_fn(f"{self.key_metric} of the trivial predictor (every pixel foreground): {self.baseline:.4f}")

    def _record_loss(self, engine: Engine) -> None:
        self._losses.append(float(from_engine("loss", first=True)(engine.state.output)))

    def _record_epoch(self, engine: Engine) -> None:
        row: dict[str, float] = {
            "epoch": engine.state.epoch,
            "train_loss": float(np.mean(self._losses)) if self._losses else float("nan"),
            "learning_rate": float(self.optimizer.param_groups[0]["lr"]),
            "seconds": self.seconds_before + time.perf_counter() - self._start,
        }
        self._losses.clear()
        if self.evaluator.state.epoch == engine.state.epoch and self.evaluator.state.metrics:
            metrics = self.evaluator.state.metrics.items()
            row.update({name: float(value) for name, value in metrics if np.size(convert_to_numpy(value)) == 1})
        self.history.append(row)
        if not _is_main_process():
            return
        line = f"epoch {row['epoch']:>3}/{engine.state.max_epochs}  train loss {row['train_loss']:.4f}"
        if self.key_metric in row:
            line += f"  {self.key_metric} {row[self.key_metric]:.4f}"
            if self.baseline is not None:
                line += f" (trivial {self.baseline:.4f})"
        self.print_fn(f"{line}  lr {row['learning_rate']:.1e}  ({row['seconds']:.0f} s)")
        with atomic_path(self.history_path) as temporary:
            temporary.write_text(json.dumps(self.history, indent=1) + "\n")

    def save_figure(self, engine: Engine | None = None) -> Path | None:
        """Training loss and validation metrics per epoch, as a PNG (main process only)."""
        if not self.history or not _is_main_process():
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [row["epoch"] for row in self.history]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        left.plot(epochs, [row["train_loss"] for row in self.history], label="training loss")
        left.set_xlabel("epoch")
        left.set_title("training loss")
        names = [n for n in self.history[-1] if n.startswith("val_") and not n.endswith("hd95")]
        for name in names:
            points = [(row["epoch"], row[name]) for row in self.history if name in row]
            right.plot(*zip(*points), marker=".", label=name.removeprefix("val_"))
        if self.baseline is not None:
            right.axhline(self.baseline, color="grey", linestyle="--", label="trivial predictor")
        right.set_xlabel("epoch")
        right.set_title("validation")
        right.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        with atomic_path(self.figure_path) as temporary:
            fig.savefig(temporary, dpi=100)
        plt.close(fig)
        return self.figure_path


class ValidationOverlays:
    """A PNG of validation cases with the ground truth (green) and prediction (red) outlines, for the best epoch.

    Attach to the evaluator: it keeps the first ``n_cases`` items of each validation run and rewrites ``path``
    whenever the key metric improves, so the figure always shows the best model's predictions.
    """

    def __init__(self, path: str | Path, n_cases: int = 4) -> None:
        self.path, self.n_cases = Path(path), n_cases
        self._items: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda e: self._items.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._keep)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write_if_best)

    def _keep(self, engine: Engine) -> None:
        for item in engine.state.output:
            if len(self._items) >= self.n_cases:
                return
            image, label, pred = (convert_to_numpy(item[k]) for k in ("image", "label", "pred"))
            self._items.append((image, label[0], pred[0]))

    def _write_if_best(self, engine: Engine) -> None:
        if engine.state.best_metric_epoch != engine.state.epoch or not self._items or not _is_main_process():
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(self._items), figsize=(3 * len(self._items), 3.2), squeeze=False)
        for axis, (image, label, pred) in zip(axes[0], self._items):
            # MONAI's readers give (x, y): transpose back to (row, column) for display
            picture = image[0].T if image.shape[0] != 3 else np.moveaxis(image, 0, -1).transpose(1, 0, 2)
            axis.imshow(np.clip(picture, 0, 1), cmap="gray")
            for mask, colour in ((label, "lime"), (pred, "red")):
                if mask.any() and not mask.all():
                    axis.contour(mask.T, levels=[0.5], colors=colour, linewidths=1)
            axis.set_axis_off()
        fig.suptitle(f"epoch {engine.state.epoch}: ground truth (green), prediction (red)")
        fig.tight_layout()
        with atomic_path(self.path) as temporary:
            fig.savefig(temporary, dpi=90)
        plt.close(fig)
