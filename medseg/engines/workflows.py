"""Supervised training and validation workflows on MONAI's Ignite engines.

A thin assembly of :class:`monai.engines.SupervisedTrainer`, :class:`monai.engines.SupervisedEvaluator` and
:class:`monai.handlers.ValidationHandler` for binary segmentation, taking the metrics, the post-processing and
the extra handlers (checkpoints, statistics, early stopping) from the caller; it writes no training loop of
its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import torch
from ignite.engine import Engine, Events
from ignite.metrics import Metric
from monai.engines import SupervisedEvaluator, SupervisedTrainer, default_prepare_batch
from monai.handlers import MeanDice, ValidationHandler, from_engine
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import Activationsd, AsDiscreted, Compose
from torch.utils.data import DataLoader

__all__ = ["EpochReport", "binary_postprocessing", "supervised_workflow"]

VAL_METRIC = "val_mean_dice"


def binary_postprocessing(threshold: float = 0.5) -> Compose:
    """Sigmoid, then threshold: logits of a one-channel network to a binary mask under ``pred``."""
    return Compose([Activationsd("pred", sigmoid=True), AsDiscreted("pred", threshold=threshold)])


class EpochReport:
    """Print one line per epoch: mean training loss, validation Dice and elapsed time.

    Attach it to the trainer after the :class:`~monai.handlers.ValidationHandler` so that the
    validation metric of the same epoch is available. ``history`` keeps every epoch's figures.
    """

    def __init__(self, evaluator: Engine, metric: str = VAL_METRIC, print_fn: Callable[[str], None] = print) -> None:
        self.evaluator, self.metric, self.print_fn = evaluator, metric, print_fn
        self.history: list[dict[str, float]] = []
        self._losses: list[float] = []
        self._start = time.perf_counter()

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._record_loss)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._report)

    def _record_loss(self, trainer: Engine) -> None:
        self._losses.append(float(from_engine("loss", first=True)(trainer.state.output)))

    def _report(self, trainer: Engine) -> None:
        row = {
            "epoch": trainer.state.epoch,
            "train_loss": sum(self._losses) / max(len(self._losses), 1),
            "val_dice": float(self.evaluator.state.metrics[self.metric]),
            "seconds": time.perf_counter() - self._start,
        }
        self._losses.clear()
        self.history.append(row)
        self.print_fn(
            f"epoch {row['epoch']:>3}/{trainer.state.max_epochs}  train loss {row['train_loss']:.4f}  "
            f"val Dice {row['val_dice']:.4f}  ({row['seconds']:.0f} s)"
        )


def supervised_workflow(
    network: torch.nn.Module,
    loss_function: Callable,
    optimizer: torch.optim.Optimizer,
    train_loader: DataLoader,
    val_loader: DataLoader,
    max_epochs: int,
    device: str | torch.device = "cpu",
    inferer: Inferer | None = None,
    prepare_batch: Callable = default_prepare_batch,
    amp: bool = False,
    postprocessing: Callable | None = None,
    val_prepare_batch: Callable = default_prepare_batch,
    key_metric: Mapping[str, Metric] | None = None,
    additional_metrics: Mapping[str, Metric] | None = None,
    train_handlers: Sequence = (),
    val_handlers: Sequence = (),
    val_interval: int = 1,
) -> tuple[SupervisedTrainer, SupervisedEvaluator]:
    """Build a trainer that validates every ``val_interval`` epochs, and its evaluator.

    Args:
        prepare_batch: the trainer's batch preparation (e.g. :class:`medseg.engines.PrepareBatchSegCaps`,
            which passes the label to SegCaps for its reconstruction).
        postprocessing: turns the evaluator's ``pred`` into a binary mask; default
            :func:`binary_postprocessing` (sigmoid, threshold 0.5) for networks that output logits, use
            :func:`medseg.engines.segcaps_postprocessing` for capsule lengths.
        val_prepare_batch: the evaluator's batch preparation; the label is never a network input there.
        key_metric: the evaluator's key metric, ``{name: ignite metric}``; default mean Dice as ``val_mean_dice``.
        additional_metrics: further evaluator metrics (e.g. IoU, kappa, HD95).
        train_handlers: handlers of the trainer, after the validation handler (checkpoints, stats, budget).
        val_handlers: handlers of the evaluator (best checkpoint, early stopping, learning-rate schedule).
        other arguments: those of MONAI's ``SupervisedTrainer``/``SupervisedEvaluator``.
    """
    if key_metric is None:
        key_metric = {VAL_METRIC: MeanDice(include_background=True, output_transform=from_engine(["pred", "label"]))}
    evaluator = SupervisedEvaluator(
        device=device,
        val_data_loader=val_loader,
        network=network,
        inferer=inferer or SimpleInferer(),
        postprocessing=postprocessing or binary_postprocessing(),
        key_val_metric=dict(key_metric),
        additional_metrics=dict(additional_metrics or {}) or None,
        val_handlers=list(val_handlers) or None,
        prepare_batch=val_prepare_batch,
        amp=amp,
    )
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=max_epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss_function,
        prepare_batch=prepare_batch,
        train_handlers=[
            ValidationHandler(validator=evaluator, interval=val_interval, epoch_level=True),
            *train_handlers,
        ],
        amp=amp,
    )
    return trainer, evaluator
