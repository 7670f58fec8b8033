"""The training state of every epoch in one file, and its loader, for ``--resume``.

Resuming a killed run needs more than network, optimizer, scheduler and trainer: the best metric so far, the
model saver's members (:class:`medseg.engines.WeightAverageSaver`), the early-stopping counter, the time already
spent and the history. :class:`LastStateSaver` writes all of them to one file every epoch, which
:class:`ResumeLoader` (MONAI's ``CheckpointLoader``, ``weights_only=True``) reads back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from medseg.engines.utils import is_main_process, unwrap_module
from medseg.files import atomic_path

__all__ = ["LastStateSaver", "ResumeLoader"]


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
        if not is_main_process():
            return
        state = {name: unwrap_module(obj).state_dict() for name, obj in self.save_dict.items()}
        with atomic_path(self.path) as temporary:
            torch.save(state, temporary)


class ResumeLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` for a :class:`LastStateSaver` file, loading the trainer it is attached to too."""

    def attach(self, engine: Engine) -> None:
        self.load_dict.setdefault("trainer", engine)
        super().attach(engine)
