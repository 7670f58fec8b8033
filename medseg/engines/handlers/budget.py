"""A wall-clock budget for training: stop cleanly when the minutes are spent, the time to prepare the data
included."""

from __future__ import annotations

import time

import numpy as np
from ignite.engine import Engine, Events

from medseg.engines.utils import max_over_ranks

__all__ = ["WallClockBudget"]


class WallClockBudget:
    """Stop training cleanly when ``minutes`` of wall-clock time are spent (``None``: no budget).

    The clock runs from :meth:`start`: the bundles' ``train.json`` calls it first thing (``initialize``), so that
    loading and caching the data count, as they do on the user's clock; without that call it starts when training
    does. After each epoch (its validation included), training stops if another epoch of the mean length of the
    last three would overrun the budget. Within an epoch, the first included, it stops as soon as the budget is
    spent (after at least one iteration, so that there is a network): the epoch is cut short and ends as epochs do,
    validated as it is (on a validation epoch, ``--val_interval``), so that a budget shorter than an epoch still
    gives a validated checkpoint, on time. Time spent before a ``--resume`` counts
    (:meth:`state_dict`): a resumed run whose budget is already spent stops at once. Under ``torch.distributed``
    the ranks agree on the decision (the slowest rank's clock wins), so that no rank waits for another that has
    stopped.
    """

    def __init__(self, minutes: float | None) -> None:
        if minutes is not None and not minutes > 0:
            raise ValueError(f"minutes must be positive or None, got {minutes}")
        self.budget = None if minutes is None else 60.0 * float(minutes)
        self.spent = 0.0
        self._started: float | None = None
        self._preparation = 0.0
        self._epoch_started = 0.0
        self._epochs: list[float] = []
        self._cut_short = False

    def start(self) -> WallClockBudget:
        """Start the clock now (once: a second call keeps the first start); returns the budget."""
        if self._started is None:
            self._started = time.perf_counter()
        return self

    def attach(self, engine: Engine) -> None:
        if self.budget is None:
            return
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.EPOCH_STARTED, self._start_epoch)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._check_iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._check_epoch)

    def elapsed(self) -> float:
        """Seconds spent: before a ``--resume`` (:attr:`spent`) and since :meth:`start` in this process."""
        return self.spent + (0.0 if self._started is None else time.perf_counter() - self._started)

    def state_dict(self) -> dict:
        return {"spent": self.elapsed()}

    def load_state_dict(self, state_dict: dict) -> None:
        """The time spent by the runs before this one (this process's own time keeps counting from :meth:`start`)."""
        self.spent = float(state_dict.get("spent", 0.0))

    def _start(self, engine: Engine) -> None:
        self.start()
        self._preparation = time.perf_counter() - self._started
        if self.spent >= self.budget:
            self._stop(engine, "before this run (--resume)")

    def _start_epoch(self, engine: Engine) -> None:
        self._epoch_started = self.elapsed()

    def progress(self) -> float:
        """The spent share of the budget in [0, 1] (0 without a budget), the largest over the ranks."""
        if self.budget is None:
            return 0.0
        return min(1.0, max_over_ranks(self.elapsed() / self.budget))

    @staticmethod
    def _agree(over: bool) -> bool:
        return bool(max_over_ranks(float(over)))

    def _stop(self, engine: Engine, when: str) -> None:
        engine.logger.info(f"time budget of {self.budget / 60:g} min spent {when}: training stops, models kept")
        engine.state.budget_spent = True
        engine.terminate()

    def _check_iteration(self, engine: Engine) -> None:
        """Cut the epoch short when the budget is spent; it is validated (``EPOCH_COMPLETED``), then training stops."""
        if not self._cut_short and self._agree(self.elapsed() > self.budget):
            self._cut_short = True
            engine.terminate_epoch()

    def _check_epoch(self, engine: Engine) -> None:
        if self._cut_short:
            length = engine.state.epoch_length
            done = (engine.state.iteration - 1) % length + 1 if length else engine.state.iteration
            data = f"; preparing the data took {self._preparation:.0f} s" if self._preparation >= 1 else ""
            self._stop(engine, f"during epoch {engine.state.epoch} (after {done} of {length} iterations{data})")
            return
        now = self.elapsed()
        self._epochs.append(now - self._epoch_started)
        next_epoch = float(np.mean(self._epochs[-3:]))
        if not engine.should_terminate and self._agree(now + next_epoch > self.budget):
            self._stop(engine, f"after epoch {engine.state.epoch} (another would take {next_epoch:.0f} s)")
