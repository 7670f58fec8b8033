"""The last epoch of a training validated, whatever ``--val_interval``.

MONAI's ``ValidationHandler`` validates every ``interval`` epochs. A run whose budget (``--minutes``) or ``--epochs``
ends between two validations would keep, and save, the network of its last validation (with ``--model_selection
last``: epochs of training lost), or none at all if it ended before its first validation. This handler, MONAI's
extended with the one event it lacks, validates the last epoch when it was not a validation epoch, so that the saved
network is the last one trained and every run leaves one.
"""

from __future__ import annotations

from ignite.engine import Engine, Events
from monai.engines import Evaluator
from monai.handlers import ValidationHandler

__all__ = ["FinalValidation"]


class FinalValidation(ValidationHandler):
    """Run ``validator`` when training completes (its epochs done, its budget spent, or stopped early) unless the
    last epoch was validated already (a multiple of ``interval``, as MONAI's ``ValidationHandler`` validates)."""

    def __init__(self, validator: Evaluator, interval: int) -> None:
        super().__init__(interval=interval, validator=validator, epoch_level=True)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if engine.state.epoch % self.interval:
            super().__call__(engine)
