"""FinalValidation: the last epoch of a training is validated whatever the validation interval, once.

Reference: the epochs counted by hand, on an ignite trainer and a MONAI evaluator beside MONAI's own
``ValidationHandler``.
"""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator
from monai.handlers import ValidationHandler

from medseg.engines import FinalValidation


def _validated_epochs(max_epochs: int, interval: int, stop_at: int | None = None) -> list[int]:
    validated: list[int] = []
    batch = {"image": torch.zeros(1, 1, 2, 2), "label": torch.zeros(1, 1, 2, 2)}
    validator = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=[batch], network=torch.nn.Identity())
    trainer = Engine(lambda engine, batch: None)
    validator.add_event_handler(Events.STARTED, lambda engine: validated.append(trainer.state.epoch))
    ValidationHandler(interval=interval, validator=validator, epoch_level=True).attach(trainer)
    FinalValidation(validator, interval).attach(trainer)
    if stop_at is not None:  # as the budget or early stopping ends a run
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_at), lambda engine: engine.terminate())
    trainer.run([0, 1], max_epochs=max_epochs)
    return validated


@pytest.mark.parametrize(
    ("max_epochs", "interval", "stop_at", "expected"),
    [
        (7, 5, None, [5, 7]),  # the last epoch added
        (10, 5, None, [5, 10]),  # validated already: not twice
        (2, 5, None, [2]),  # a run shorter than the interval still validates (and saves) its network
        (20, 5, 8, [5, 8]),  # stopped by its budget between two validations
        (3, 1, None, [1, 2, 3]),
    ],
)
def test_the_last_epoch_is_validated_once(max_epochs, interval, stop_at, expected):
    assert _validated_epochs(max_epochs, interval, stop_at) == expected
