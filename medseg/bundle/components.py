"""The objects a bundle's configs build from their settings: network, loss, batches, transforms, resume.

Each reads the registries' metadata (:data:`medseg.networks.NETWORKS`, :data:`medseg.losses.LOSSES`) and the
task record (:mod:`medseg.tasks`), so that ``--network_name`` and ``--loss_name`` may name any registered
network or loss without the configs branching on names:

- the loss is built for what the network outputs (logits, or SegCaps' capsule lengths), with SegCaps'
  positive-class weight computed from the training masks when the loss needs one, and wrapped in
  :class:`medseg.losses.SegCapsLoss` when the network has a reconstruction branch;
- a network with a reconstruction branch gets :class:`medseg.engines.PrepareBatchSegCaps` for training;
- the post-processing applies a sigmoid only to logits, and cleans the mask as the bundle sets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.engines import default_prepare_batch
from monai.transforms import Compose
from torch import nn

from medseg import networks
from medseg.engines import BudgetCosineLR, PrepareBatchSegCaps, ResumeLoader, WallClockBudget, binary_postprocessing
from medseg.inference import CleanMaskd
from medseg.losses import LOSSES, SegCapsLoss, compute_pos_weight, get_loss
from medseg.networks import network_output
from medseg.tasks import get_task
from medseg.transforms import UntrackedCompose

from .settings import SettingsError

__all__ = [
    "LR_SCHEDULES",
    "build_loss",
    "build_network",
    "has_reconstruction",
    "lr_scheduler",
    "postprocessing",
    "resume_handlers",
    "training_pos_weight",
    "training_prepare_batch",
    "transforms",
]

logger = logging.getLogger(__name__)


def build_network(
    network_name: str, in_channels: int, network_kwargs: Mapping[str, Mapping] | None = None
) -> nn.Module:
    """The registered network with ``in_channels``, any input size, and the bundle's settings for that network
    (``network_kwargs[network_name]``, e.g. narrower U-Net levels for a CPU budget)."""
    return networks.build_network(network_name, in_channels, **(network_kwargs or {}).get(network_name, {}))


def has_reconstruction(network: nn.Module) -> bool:
    """Whether the network (SegCaps) reconstructs its input and so trains with image and label as inputs."""
    module = network.module if isinstance(network, nn.parallel.DistributedDataParallel) else network
    return getattr(module, "reconstruction", None) is not None


def training_prepare_batch(network: nn.Module):
    """The trainer's batch preparation: the label goes to the network too when it reconstructs (SegCaps)."""
    return PrepareBatchSegCaps() if has_reconstruction(network) else default_prepare_batch


def _planes(labels: Iterable[torch.Tensor], volumetric: bool) -> Iterator[np.ndarray]:
    for label in labels:
        mask = np.asarray(label)[0] > 0
        yield from (mask[..., k] for k in range(mask.shape[-1])) if volumetric else (mask,)


def training_pos_weight(task: str, entries: Sequence[Mapping], **options: Any) -> float:
    """SegCaps' positive-class weight: the negative/positive pixel ratio of the training masks with foreground.

    The masks are read with the task's label path at native size (slice by slice for volumes), so that
    neither augmentation nor resizing changes the ratio.
    """
    record = get_task(task)
    load = record.label_transforms(None, **{k: v for k, v in options.items() if record.option(k).stage == "label"})
    return compute_pos_weight(_planes((load({"label": e["label"]})["label"] for e in entries), record.volumetric))


def build_loss(
    loss_name: str,
    network_name: str,
    network: nn.Module,
    loss_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    task: str | None = None,
    train_entries: Sequence[Mapping] = (),
    recon_weight: float = 131.072,
    task_options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The training loss: ``get_loss(loss_name)`` for the network's output, weighted and wrapped as needed.

    Args:
        loss_name, network_name: registry names.
        network: the built network (its reconstruction branch decides the SegCaps wrapping).
        loss_kwargs: the bundle's arguments per loss name, ``{"iou": {"batch": True}, ...}``; those of
            ``loss_name`` are passed to the loss (they override what the network output implies).
        task, train_entries, task_options: for a loss that needs ``pos_weight`` and was not given one, it is
            computed from these training masks (:func:`training_pos_weight`).
        recon_weight: SegCaps' reconstruction weight (131.072 in the SegCaps release, 100 in the capsule IoU paper).
    """
    kwargs = dict((loss_kwargs or {}).get(loss_name, {}))
    if LOSSES[loss_name].needs_pos_weight and "pos_weight" not in kwargs:
        if task is None or not train_entries:
            raise ValueError(f"loss {loss_name!r} needs pos_weight: give it, or the task and its training entries")
        kwargs["pos_weight"] = training_pos_weight(task, train_entries, **(task_options or {}))
        logger.info(f"{loss_name}: pos_weight {kwargs['pos_weight']:.3f} from {len(train_entries)} training masks")
    loss = get_loss(loss_name, network_output=network_output(network_name), **kwargs)
    return SegCapsLoss(loss, recon_weight=recon_weight) if has_reconstruction(network) else loss


def postprocessing(
    network_name: str, threshold: float = 0.5, keep_largest: int | None = None, fill_holes: bool = False
) -> Compose:
    """Sigmoid (for logits) and threshold: the evaluator's ``pred`` as a binary mask; then, as the bundle sets,
    only its ``keep_largest`` largest connected components, and its holes filled
    (:class:`medseg.inference.CleanMaskd`, what ``medseg infer`` does with the same settings)."""
    binary = binary_postprocessing(threshold, network_output(network_name))
    if not keep_largest and not fill_holes:
        return binary
    return Compose([binary, CleanMaskd("pred", keep_largest=keep_largest or None, fill_holes=fill_holes)])


def transforms(
    task: str, spatial_size: Sequence[int] | None, augmentation: Any = None, with_label: bool = True, **options: Any
) -> Compose:
    """The task's pipeline at ``spatial_size`` (image and label, or image only), then ``augmentation`` if any.

    MONAI's ``CacheDataset`` caches everything before the first random transform, so the deterministic loading
    and pre-processing runs once per image and only the augmentation runs every epoch. The augmentation runs
    untracked (:class:`medseg.transforms.UntrackedCompose`): training batches are plain tensors, without the cost
    of MONAI's metadata, which only validation and inference need. The pipeline is flat:
    ``CacheDataset`` takes a nested ``Compose`` (randomizable as a whole) for a random transform and would cache
    nothing.
    """
    record = get_task(task)
    size = None if spatial_size is None else tuple(spatial_size)
    steps = [record.pair_transforms(size, **options) if with_label else record.image_transforms(size, **options)]
    if augmentation is not None:  # training: plain tensors from here on (see medseg.transforms.untracked)
        steps.append(UntrackedCompose([augmentation]))
    return Compose(steps).flatten()


def resume_handlers(resume: bool, path: str | Path, load_dict: Mapping[str, Any], map_location: Any = None) -> list:
    """``[ResumeLoader(path, load_dict)]`` when resuming from an existing last-state file, else ``[]``.

    :class:`medseg.engines.ResumeLoader` is MONAI's ``CheckpointLoader`` (``torch.load(..., weights_only=True)``)
    that also restores the trainer it is attached to.
    """
    if not resume:
        return []
    if not Path(path).is_file():
        logger.warning(f"--resume: no last state at {path}; training starts from the beginning")
        return []
    return [ResumeLoader(load_path=str(path), load_dict=dict(load_dict), map_location=map_location)]


#: ``--lr_schedule`` values: what each does to the learning rate.
LR_SCHEDULES = {
    "plateau": "multiplied by lr_factor after lr_patience validations without a better Dice (the papers')",
    "cosine": "cosine from the initial rate to 1 % of it over the budget (--minutes, else --epochs)",
}


def lr_scheduler(
    schedule: str,
    optimizer: torch.optim.Optimizer,
    budget: WallClockBudget,
    max_epochs: int,
    epoch_length: int,
    factor: float,
    patience: int,
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """The ``--lr_schedule`` scheduler: ``ReduceLROnPlateau`` on validation Dice, or :class:`BudgetCosineLR`.

    The configs step the first after each validation and the second after each training iteration.
    """
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=factor, patience=patience)
    if schedule == "cosine":
        return BudgetCosineLR(optimizer, budget, max_epochs, epoch_length)
    valid = "; ".join(f"{name}: {meaning}" for name, meaning in LR_SCHEDULES.items())
    raise SettingsError(f"unknown --lr_schedule {schedule!r}; valid: {valid}")
