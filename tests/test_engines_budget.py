"""``--minutes``: the wall-clock budget kept, the first epoch and the data preparation included (ignite engines whose
iterations take a known time, and a bundle trained on real radiographs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch
from ignite.engine import Engine, Events
from support import REPO_ROOT

from medseg.engines import WallClockBudget

STEP = 0.05  # seconds an iteration takes


def _engine(budget: WallClockBudget) -> tuple[Engine, list[int]]:
    """An engine of 20 iterations an epoch, each ``STEP`` seconds; the iterations at which an epoch ended (the
    validation of the bundles runs there)."""
    engine = Engine(lambda engine, batch: time.sleep(STEP))
    budget.attach(engine)
    ended: list[int] = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: ended.append(engine.state.iteration))
    return engine, ended


def test_a_budget_shorter_than_an_epoch_cuts_the_first_epoch_short_and_ends_it():
    budget = WallClockBudget(minutes=0.3 / 60)  # 0.3 s: 6 iterations of an epoch of 20
    engine, ended = _engine(budget)
    start = time.perf_counter()
    engine.run(range(20), max_epochs=5)
    took = time.perf_counter() - start
    assert engine.state.budget_spent and engine.state.epoch == 1
    assert len(ended) == 1 and 6 <= ended[0] < 20, ended  # the epoch ended (validated) after what there was
    assert took < 0.3 + 4 * STEP + 0.5, took  # on time: an iteration past the budget at most, and some slack


def test_the_time_to_prepare_the_data_counts_from_start():
    """The bundles start the clock before the data are loaded and cached: a budget spent by then gives one
    iteration (a network to validate) and stops."""
    budget = WallClockBudget(minutes=0.2 / 60).start()
    time.sleep(0.3)  # loading and caching
    engine, ended = _engine(budget)
    engine.run(range(20), max_epochs=5)
    assert ended == [1] and engine.state.budget_spent


def test_without_start_the_clock_starts_with_training_and_whole_epochs_fit():
    """Epochs of 0.5 s, a budget of 1.3 s: two epochs, then a third would overrun, so training stops after the
    second; the time before ``run`` does not count (no :meth:`start`)."""
    budget = WallClockBudget(minutes=1.3 / 60)
    engine = Engine(lambda engine, batch: time.sleep(STEP))
    budget.attach(engine)
    time.sleep(0.5)
    engine.run(range(10), max_epochs=5)
    assert engine.state.epoch == 2 and engine.state.iteration == 20 and engine.state.budget_spent


def test_a_resumed_run_counts_the_time_spent_before():
    budget = WallClockBudget(minutes=1.0)
    budget.load_state_dict({"spent": 60.0})
    engine, ended = _engine(budget)
    engine.run(range(20), max_epochs=5)
    assert ended == [] and engine.state.iteration == 0 and engine.state.budget_spent


@pytest.mark.slow
def test_a_bundle_keeps_a_budget_shorter_than_its_first_epoch(real_data, tmp_path):
    """cxr_lung_unet on 40 real radiographs, batch 2, with a budget of 0.12 s: the clock starts before the data are
    loaded and cached, which alone takes longer on any machine, so the budget is spent before the first epoch (16
    iterations) ends, however fast the machine trains (2 s was not: a quiet machine finished the epoch in 1 s).
    Training stops within the first epoch, validates it and keeps the model."""
    data = tmp_path / "openist"
    data.mkdir()
    for image in sorted(real_data("cxr_openist").glob("*.jpg"))[:40]:
        shutil.copy(image, data / image.name)
        shutil.copy(image.with_name(f"{image.stem}@.png"), data / f"{image.stem}@.png")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/train.json", "--dataset_dir",
               str(data), "--output_dir", str(out), "--task_options", "{'mask_pattern': '{stem}@.png'}",
               "--spatial_size", "[64, 64]", "--batch_size", "2", "--epochs", "50", "--minutes", "0.002",
               "--cache_workers", "1"]  # fmt: skip
    process = subprocess.run(command, cwd=REPO_ROOT / "bundles" / "cxr_lung_unet", capture_output=True, text=True,
                             timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    log = process.stdout + process.stderr
    assert process.returncode == 0, log[-3000:]
    assert "time budget of 0.002 min spent during epoch 1 (after " in log, log[-3000:]
    trainer = torch.load(out / "models" / "last_state.pt", weights_only=True)["trainer"]
    assert 1 <= trainer["iteration"] < trainer["epoch_length"], trainer
    assert len(json.loads((out / "history.json").read_text())) == 1
    assert (out / "models" / "model.pt").is_file()
