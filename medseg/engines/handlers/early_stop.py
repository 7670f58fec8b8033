"""MONAI's early stopping, resumable."""

from __future__ import annotations

from monai.handlers import EarlyStopHandler

__all__ = ["ResumableEarlyStop"]


class ResumableEarlyStop(EarlyStopHandler):
    """MONAI's ``EarlyStopHandler`` whose counter and best score are saved with the last state."""

    def state_dict(self) -> dict:
        return dict(self._handler.state_dict()) if self._handler is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict and self._handler is not None:
            self._handler.load_state_dict(state_dict)
