"""``make demo``: the chest X-ray bundle learns the synthetic radiographs, far above the trivial predictor."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from medseg.apps.demo import DemoConfig, run_demo


@pytest.mark.slow
def test_demo_trains_and_evaluates_the_bundle(tmp_path, capfd):
    config = DemoConfig(out_dir=str(tmp_path), cases=32, spatial_size=(64, 64), epochs=14, batch_size=4)
    config.extra = {"learning_rate": 0.003}
    result = run_demo(config)
    printed = capfd.readouterr().out
    assert "python -m monai.bundle run --config_file configs/train.json" in printed
    assert printed.count("(trivial ") == 14  # one line per epoch, beside the all-lung predictor's Dice
    history = json.loads((tmp_path / "history.json").read_text())
    trivial = float(printed.split("every pixel foreground): ")[1].split()[0])
    best = max(row["val_mean_dice"] for row in history)
    assert best > 0.8 and best > trivial + 0.3, (best, trivial)
    assert result["summary"]["test_mean_dice"]["mean"] > trivial + 0.3
    for name in ("models/model.pt", "training_curves.png", "validation_overlays.png", "eval/summary.json"):
        assert f"{tmp_path / name}" in printed, name
    assert Image.open(tmp_path / "training_curves.png").size[0] > 500
