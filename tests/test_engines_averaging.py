"""The averaged checkpoint: its members chosen by hand from a sequence of validation scores, its weights the mean of
constant networks (closed form), its state resumed through ``torch.save``/``torch.load(weights_only=True)``."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import torch

from medseg.bundle import check_training
from medseg.engines import WeightAverageSaver, average_state_dicts
from medseg.pipeline import SettingsError


def _network() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))


def _validate(saver: WeightAverageSaver, network: torch.nn.Module, epoch: int, score: float) -> None:
    """Epoch ``epoch`` trains ``network`` to weights all equal to ``epoch``, and validation scores ``score``."""
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.fill_(float(epoch))
    network[1].num_batches_tracked.fill_(epoch)
    state = SimpleNamespace(epoch=epoch, metrics={"val_mean_dice": score}, key_metric_name="val_mean_dice")
    saver(SimpleNamespace(state=state))


SCORES = [0.50, 0.70, 0.60, 0.70, 0.65, 0.40]  # epochs 1..6; epochs 2 and 4 tie


@pytest.mark.parametrize(
    "select, k, members",
    [
        ("best", 1, [2]),  # the best; a tie keeps the earlier network
        ("best", 3, [2, 4, 5]),
        ("best", 10, [2, 4, 5, 3, 1, 6]),  # fewer validations than k: all of them
        ("last", 1, [6]),
        ("last", 2, [5, 6]),
    ],
)
def test_members_and_their_mean(select, k, members, tmp_path):
    network = _network()
    saver = WeightAverageSaver(network, tmp_path, "model.pt", k=k, select=select)
    for epoch, score in enumerate(SCORES, start=1):
        _validate(saver, network, epoch, score)
    assert saver.epochs == members
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved.keys() == network.state_dict().keys()
    mean = sum(members) / len(members)
    assert torch.equal(saved["0.weight"], torch.full((2, 1, 3, 3), mean))
    assert torch.equal(saved["1.running_mean"], torch.zeros(2))  # buffers are averaged too: all zero here
    assert int(saved["1.num_batches_tracked"]) == members[0]  # an integer counter: the first member's
    assert [path.name for path in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left


def test_averaging_starts_when_the_learning_rate_is_first_reduced(tmp_path):
    """Before the reduction (epochs 1-3 at the initial rate) the best network alone; from epoch 4 on, the best
    networks validated since, even though epoch 2 scored higher."""
    network = _network()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    saver = WeightAverageSaver(network, tmp_path, k=3, optimizer=optimizer)
    for epoch, score in enumerate(SCORES, start=1):
        if epoch == 4:
            optimizer.param_groups[0]["lr"] = 0.05
        _validate(saver, network, epoch, score)
        if epoch == 3:
            assert saver.epochs == [2] and not saver.averaging
    assert saver.averaging and saver.epochs == [4, 5, 6]
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["0.bias"], torch.full((2,), 5.0))
    assert saver.state_dict()["averaging"] is True


def test_a_network_outside_the_best_is_not_written(tmp_path):
    network = _network()
    saver = WeightAverageSaver(network, tmp_path, k=1)
    _validate(saver, network, 1, 0.9)
    written = (tmp_path / "model.pt").stat().st_mtime_ns
    _validate(saver, network, 2, 0.8)
    assert (tmp_path / "model.pt").stat().st_mtime_ns == written
    assert torch.load(tmp_path / "model.pt", weights_only=True)["0.bias"].tolist() == [1.0, 1.0]


def test_resumed_state_continues_the_average(tmp_path):
    """A run killed after epoch 3 and resumed from its saved state keeps the same members as one that ran on."""
    network = _network()
    saver = WeightAverageSaver(network, tmp_path / "a", k=3)
    for epoch, score in enumerate(SCORES[:3], start=1):
        _validate(saver, network, epoch, score)
    buffer = io.BytesIO()
    torch.save(saver.state_dict(), buffer)
    buffer.seek(0)
    resumed = WeightAverageSaver(network, tmp_path / "b", k=3)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for epoch, score in enumerate(SCORES[3:], start=4):
        _validate(resumed, network, epoch, score)
    assert resumed.epochs == [2, 4, 5]
    assert torch.equal(torch.load(tmp_path / "b" / "model.pt", weights_only=True)["0.bias"], torch.full((2,), 11 / 3))


def test_average_of_state_dicts_by_hand():
    first = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(7)}
    second = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(9)}
    mean = average_state_dicts([first, second])
    assert mean["w"].tolist() == [2.0, 4.0] and int(mean["n"]) == 7
    with pytest.raises(ValueError, match="different networks"):
        average_state_dicts([first, {"v": torch.zeros(2)}])
    with pytest.raises(ValueError, match="no state dicts"):
        average_state_dicts([])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="select must be one of"):
        WeightAverageSaver(_network(), ".", select="final")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        WeightAverageSaver(_network(), ".", k=0)
    training = {"epochs": 1, "minutes": None, "batch_size": 4, "val_interval": 1, "lr_schedule": "plateau",
                "model_selection": "best", "model_average": 1}  # fmt: skip
    with pytest.raises(SettingsError, match="--model_average must be a whole number of at least 1, got 0"):
        check_training(**{**training, "model_average": 0})
    with pytest.raises(SettingsError, match="--val_fraction 0 validates on the training cases: --model_selection best"):
        check_training(**training, val_fraction=0)
    for share in (1.0, -0.1, True, "0.2"):
        with pytest.raises(SettingsError, match=r"--val_fraction must be a number in \[0, 1\)"):
            check_training(**{**training, "model_selection": "last"}, val_fraction=share)
    check_training(**{**training, "model_selection": "last"}, val_fraction=0)
