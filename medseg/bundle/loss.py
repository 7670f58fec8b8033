"""The training loss of a bundle run, from the loss registry and the model's settings.

The loss is built for what the network outputs (logits, or SegCaps' capsule lengths:
:attr:`medseg.pipeline.ModelSettings.network_output`), with SegCaps' positive-class weight computed from the
training masks when the loss needs one, and wrapped in :class:`medseg.losses.SegCapsLoss` when the network has a
reconstruction branch, so that ``--loss_name`` and ``--network_name`` may name any registered loss and network
without the configs branching on names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from medseg.engines import has_reconstruction
from medseg.losses import LOSSES, SegCapsLoss, compute_class_weights, compute_pos_weight, get_loss
from medseg.pipeline import ModelSettings
from medseg.tasks import get_task

__all__ = ["build_loss", "training_pos_weight"]

logger = logging.getLogger(__name__)


def _planes(labels: Iterable[torch.Tensor], volumetric: bool) -> Iterator[np.ndarray]:
    """Each mask (a binary channel, or one-hot labels as a label map) as 2D planes: slice by slice for volumes."""
    for label in labels:
        values = np.asarray(label)
        mask = values.argmax(axis=0) if values.shape[0] > 1 else values[0] > 0
        yield from (mask[..., k] for k in range(mask.shape[-1])) if volumetric else (mask,)


def training_pos_weight(settings: ModelSettings, entries: Sequence[Mapping]) -> float | list[float]:
    """SegCaps' positive-class weight: the negative/positive pixel ratio of the training masks with foreground; for
    several labels, a weight per class (:func:`medseg.losses.compute_class_weights`).

    The masks are read with the task's label path at native size (slice by slice for volumes), so that neither
    augmentation nor resizing changes the ratio.
    """
    task = get_task(settings.task)
    load = task.label_transforms(None, settings.labels, **settings.task_options)
    planes = _planes((load({"label": e["label"]})["label"] for e in entries), task.volumetric)
    if len(settings.labels) > 1:
        return compute_class_weights(planes, len(settings.labels))
    return compute_pos_weight(planes)


def build_loss(
    *,
    name: str,
    settings: ModelSettings,
    network: nn.Module,
    loss_kwargs: Mapping[str, Any] | None = None,
    train_entries: Sequence[Mapping] = (),
    recon_weight: float = 131.072,
) -> nn.Module:
    """The training loss: ``get_loss(name)`` for the network's output, weighted and wrapped as needed.

    Args:
        name: a loss of :data:`medseg.losses.LOSSES`.
        settings: the model's settings (what the network outputs; the task, for the masks' weight).
        network: the built network (its reconstruction branch decides the SegCaps wrapping).
        loss_kwargs: arguments of the loss (they override what the network output implies).
        train_entries: the training entries, from whose masks a loss that needs ``pos_weight`` and is not given one
            gets it (:func:`training_pos_weight`).
        recon_weight: SegCaps' reconstruction weight (131.072 in the SegCaps release, 100 in the capsule IoU paper).
    """
    kwargs = dict(loss_kwargs or {})
    if LOSSES[name].needs_pos_weight and "pos_weight" not in kwargs:
        if not train_entries:
            raise ValueError(f"loss {name!r} needs pos_weight: give it, or the training entries")
        kwargs["pos_weight"] = training_pos_weight(settings, train_entries)
        logger.info(f"{name}: pos_weight {kwargs['pos_weight']} from {len(train_entries)} training masks")
    loss = get_loss(name, network_output=settings.network_output, labels=len(settings.labels), **kwargs)
    return SegCapsLoss(loss, recon_weight=recon_weight) if has_reconstruction(network) else loss
