"""The best key metric of an evaluator, as state that ``--resume`` restores."""

from __future__ import annotations

from ignite.engine import Engine

__all__ = ["BestMetricState"]


class BestMetricState:
    """The best key metric of an evaluator and its epoch, as a state dict (MONAI's engines do not save them)."""

    def __init__(self, evaluator: Engine) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict:
        return {
            "best_metric": float(self.evaluator.state.best_metric),
            "best_epoch": int(self.evaluator.state.best_metric_epoch),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.evaluator.state.best_metric = state_dict["best_metric"]
        self.evaluator.state.best_metric_epoch = state_dict["best_epoch"]
