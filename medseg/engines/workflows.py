"""Supervised training and validation workflows on MONAI's Ignite engines.

A thin assembly of :class:`monai.engines.SupervisedTrainer`, :class:`monai.engines.SupervisedEvaluator` and
:class:`monai.handlers.ValidationHandler` for binary segmentation, taking the metrics, the post-processing and
the extra handlers (checkpoints, statistics, early stopping) from the caller; it writes no training loop of
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from ignite.metrics import Metric
from monai.engines import SupervisedEvaluator, SupervisedTrainer, default_prepare_batch
from monai.handlers import MeanDice, ValidationHandler, from_engine
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import Activationsd, AsDiscreted, Compose
from torch.utils.data import DataLoader

__all__ = ["VAL_METRIC", "binary_postprocessing", "supervised_workflow"]

VAL_METRIC = "val_mean_dice"


def binary_postprocessing(threshold: float = 0.5, network_output: str = "logits") -> Compose:
    """A one-channel network's ``pred`` to a binary mask: sigmoid (for logits), then ``threshold``.

    ``network_output`` is what the network returns (``medseg.networks.NETWORKS[name].output``): ``"logits"``,
    or ``"probabilities"`` (SegCaps' capsule lengths), which are thresholded as they are.
    """
    if network_output not in ("logits", "probabilities"):
        raise ValueError(f"network_output must be 'logits' or 'probabilities', got {network_output!r}")
    activation = [Activationsd("pred", sigmoid=True)] if network_output == "logits" else []
    return Compose([*activation, AsDiscreted("pred", threshold=threshold)])


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
            :func:`binary_postprocessing` (sigmoid, threshold 0.5) for networks that output logits; use
            ``binary_postprocessing(network_output="probabilities")`` for capsule lengths.
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
