"""The training record: one line per epoch, ``history.json`` and ``training_curves.png``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.handlers import from_engine
from monai.utils import convert_to_numpy

from medseg.engines.utils import is_main_process
from medseg.files import atomic_path, write_json

__all__ = ["TrainingReport"]


class TrainingReport:
    """The training record: one line per epoch, ``history.json`` after each epoch, ``training_curves.png`` at the end.

    Each history row has the epoch, the mean training loss, the learning rate, the seconds since the start and
    the evaluator's metrics of that epoch (when it ran). The printed line shows the evaluator's key metric beside
    ``baseline`` (e.g. the Dice of calling every pixel foreground), so that a user sees what was learnt.

    Args:
        evaluator: the validation engine whose metrics are recorded.
        optimizer: its first parameter group's learning rate is recorded.
        output_dir: where ``history.json`` and ``training_curves.png`` go (main process only).
        baseline: a reference value of the key metric, printed beside it.
        print_fn: where the lines go (default ``print``).
    """

    def __init__(
        self,
        evaluator: Engine,
        optimizer: torch.optim.Optimizer,
        output_dir: str | Path,
        baseline: float | None = None,
        print_fn: Callable[[str], None] = print,
    ) -> None:
        self.evaluator, self.optimizer, self.output_dir = evaluator, optimizer, Path(output_dir)
        self.baseline, self.print_fn = baseline, print_fn
        self.history: list[dict[str, float]] = []
        self.seconds_before = 0.0
        self._losses: list[float] = []
        self._start = time.perf_counter()

    @property
    def key_metric(self) -> str:
        """The evaluator's key metric (``val_mean_dice``), printed on each line."""
        return self.evaluator.state.key_metric_name

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
        if self.baseline is not None and is_main_process():
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
        if not is_main_process():
            return
        line = f"epoch {row['epoch']:>3}/{engine.state.max_epochs}  train loss {row['train_loss']:.4f}"
        if self.key_metric in row:
            line += f"  {self.key_metric} {row[self.key_metric]:.4f}"
            if self.baseline is not None:
                line += f" (trivial {self.baseline:.4f})"
        self.print_fn(f"{line}  lr {row['learning_rate']:.1e}  ({row['seconds']:.0f} s)")
        write_json(self.history_path, self.history)

    def save_figure(self, engine: Engine | None = None) -> Path | None:
        """Training loss and validation metrics per epoch, as a PNG (main process only)."""
        if not self.history or not is_main_process():
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
