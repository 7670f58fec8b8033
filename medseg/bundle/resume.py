"""What ``--resume`` adds to the trainer: the loader of the last state, when there is one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medseg.engines import ResumeLoader

__all__ = ["resume_handlers"]

logger = logging.getLogger(__name__)


def resume_handlers(*, resume: bool, path: str | Path, load_dict: Mapping[str, Any], map_location: Any = None) -> list:
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
