"""The checkpoint of the mean of the weights of several validated networks (an average of training's iterates)."""

from __future__ import annotations

import bisect
import logging
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch import nn

from medseg.engines.utils import is_main_process, unwrap_module
from medseg.files import atomic_path

__all__ = ["WEIGHT_SELECTIONS", "WeightAverageSaver", "average_state_dicts"]

logger = logging.getLogger(__name__)

#: Which validated networks :class:`WeightAverageSaver` averages: those of the best key metric, or the last ones.
WEIGHT_SELECTIONS = ("best", "last")


def average_state_dicts(state_dicts: list[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point entries of ``state_dicts`` (all of one network); other entries
    (integer counters such as batch normalisation's ``num_batches_tracked``) are taken from the first.

    For a network with batch normalisation the running statistics are averaged like the weights, not
    recomputed on the training data as stochastic weight averaging does (``torch.optim.swa_utils.update_bn``).
    """
    if not state_dicts:
        raise ValueError("no state dicts to average")
    first = state_dicts[0]
    if any(state.keys() != first.keys() for state in state_dicts):
        raise ValueError("the state dicts to average are of different networks (their keys differ)")
    return {
        name: torch.stack([state[name] for state in state_dicts]).mean(0).to(tensor.dtype)
        if tensor.is_floating_point()
        else tensor.clone()
        for name, tensor in first.items()
    }


class WeightAverageSaver:
    """After each validation, save the mean of the weights of the ``k`` best validated networks (or the last ``k``).

    Averaging the weights of networks from the end of training gives one network that tends to generalise
    better than any of them (stochastic weight averaging, Izmailov et al., "Averaging Weights Leads to Wider
    Optima and Better Generalization", UAI 2018), at no cost at inference. SWA averages along a cyclic or constant
    learning rate from a fixed epoch; here the members are chosen by validation, which also works under a time
    budget, where the last epoch is not known in advance:

    - ``select="best"``: the ``k`` networks with the highest key metric so far (ties: the earlier one);
      ``k=1`` is the usual best checkpoint;
    - ``select="last"``: the networks of the last ``k`` validations; ``k=1`` is the last validated network.

    SWA starts averaging once training has levelled off. With ``optimizer`` given, so does this handler: until the
    optimizer's learning rate first falls below its initial value (a plateau schedule has reduced it; a decaying
    schedule does so at once) it saves the best network alone (or the last), and from then on the average of
    ``k`` networks validated since. A short run whose validation Dice is still climbing would otherwise average
    networks of very different quality (measured: the 20-epoch ``medseg demo`` lost 0.01 Dice).

    ``torch.optim.swa_utils.AveragedModel`` keeps a running mean over all updates, which cannot drop a network
    that leaves the best ``k``; hence this handler, which keeps the ``k`` members' weights (on the CPU) and writes
    their mean to ``save_dir/filename`` through :func:`medseg.files.atomic_path` whenever the members change.
    Attach it to the evaluator. :meth:`state_dict` holds the members, so that ``--resume`` continues the average.
    Only the main process writes.

    Args:
        network: the network being trained (a ``DistributedDataParallel`` wrapper is unwrapped).
        save_dir: the folder of the checkpoint.
        filename: its name.
        k: how many networks are averaged.
        select: ``"best"`` or ``"last"``, see above.
        key_metric_name: the metric that ranks networks; default: the evaluator's key metric.
        optimizer: the training optimizer, whose first learning-rate reduction starts the averaging (see above);
            ``None``: average from the first validation.
        metadata: entries added to the saved state dict's ``_metadata`` (which ``load_state_dict`` ignores for keys
            no module can have), e.g. the fingerprint of the settings the network was trained with
            (:meth:`medseg.pipeline.ModelSettings.stamp`).
    """

    def __init__(
        self,
        network: nn.Module,
        save_dir: str | Path,
        filename: str = "model.pt",
        k: int = 5,
        select: str = "best",
        key_metric_name: str | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if select not in WEIGHT_SELECTIONS:
            raise ValueError(f"select must be one of {WEIGHT_SELECTIONS}, got {select!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.network, self.path = network, Path(save_dir) / filename
        self.k, self.select, self.key_metric_name = k, select, key_metric_name
        self.optimizer, self.metadata = optimizer, dict(metadata or {})
        group = optimizer.param_groups[0] if optimizer is not None else {}
        self.initial_lr = group.get("initial_lr", group.get("lr"))  # schedulers record the initial rate there
        self.averaging = optimizer is None
        self.scores: list[float] = []
        self.epochs: list[int] = []
        self.weights: list[dict[str, torch.Tensor]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        score = float(engine.state.metrics[self.key_metric_name or engine.state.key_metric_name])
        if not self._keep(score, int(engine.state.epoch)):
            return
        if is_main_process():
            state = OrderedDict(average_state_dicts(self.weights))
            versions = getattr(unwrap_module(self.network).state_dict(), "_metadata", {})  # the modules' versions
            state._metadata = OrderedDict({**versions, **self.metadata})  # type: ignore[attr-defined]
            with atomic_path(self.path) as temporary:
                torch.save(state, temporary)
        logger.debug("%s: mean of the networks of epochs %s", self.path, self.epochs)

    def _start_averaging(self) -> None:
        """Drop the members validated before the learning rate was first reduced, when it has just been."""
        if not self.averaging and self.optimizer.param_groups[0]["lr"] < self.initial_lr:
            self.averaging = True
            self.scores, self.epochs, self.weights = [], [], []

    def _keep(self, score: float, epoch: int) -> bool:
        """Add this network to the members if it is one; whether the members changed."""
        self._start_averaging()
        k = self.k if self.averaging else 1
        if self.select == "best":
            # members in order of decreasing score, a tie after the earlier network
            position = bisect.bisect_right([-s for s in self.scores], -score)
            if position >= k:
                return False
        else:
            position = len(self.scores)
        weights = {
            name: tensor.detach().to("cpu", copy=True)
            for name, tensor in unwrap_module(self.network).state_dict().items()
        }
        self.scores.insert(position, score)
        self.epochs.insert(position, epoch)
        self.weights.insert(position, weights)
        drop = slice(k, None) if self.select == "best" else slice(None, -k)
        for members in (self.scores, self.epochs, self.weights):
            del members[drop]
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "scores": list(self.scores),
            "epochs": list(self.epochs),
            "weights": list(self.weights),
            "averaging": self.averaging,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.scores = [float(score) for score in state_dict.get("scores", [])]
        self.epochs = [int(epoch) for epoch in state_dict.get("epochs", [])]
        self.weights = [dict(weights) for weights in state_dict.get("weights", [])]
        self.averaging = bool(state_dict.get("averaging", self.averaging))
