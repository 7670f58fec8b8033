"""The built-in demo learns the synthetic chest X-rays: Dice rises well above the chance level."""

from __future__ import annotations

import json

from PIL import Image

from medseg.apps.demo import DemoConfig, all_foreground_dice, run_demo


def test_all_foreground_dice_by_hand():
    import torch

    label = torch.zeros(1, 4, 4)
    label[0, :2, :2] = 1  # |G| = 4 of N = 16: Dice = 2*4 / (16 + 4) = 0.4
    assert abs(all_foreground_dice([label]) - 0.4) < 1e-9


def test_demo_learns_and_writes_its_outputs(tmp_path, capsys):
    config = DemoConfig(
        out_dir=str(tmp_path), n_train=16, n_val=4, image_size=64, epochs=6, batch_size=4, learning_rate=3e-3
    )
    result = run_demo(config)
    dice = [row["val_dice"] for row in result["history"]]
    assert len(dice) == 6
    assert max(dice) > 0.8 and max(dice) > result["chance_dice"] + 0.3
    assert dice[-1] > dice[0]
    printed = capsys.readouterr().out
    assert printed.count("val Dice") == 6
    figure = Image.open(result["figure"])
    assert figure.size[0] > 200 and figure.size[1] > 200
    assert json.loads((tmp_path / "metrics.json").read_text())["history"] == result["history"]
