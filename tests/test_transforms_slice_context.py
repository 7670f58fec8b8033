"""The neighbouring slices of a CT volume as channels (``slice_context``, the 2.5D input of the CT bundle).

References: NumPy's ``take`` with ``mode="clip"`` (indices beyond the ends repeat the first and last slice), and
the CT pipeline without the option (each channel must be that volume moved by its offset along the axial axis).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medseg.pipeline import ModelSettings, SettingsError, build_network
from medseg.tasks import get_task
from medseg.transforms import AdjacentSlices, AdjacentSlicesd


@pytest.mark.parametrize("context", [1, 2])
def test_each_channel_is_the_volume_moved_along_its_last_axis(context):
    volume = np.random.default_rng(0).normal(size=(1, 5, 4, 7)).astype(np.float32)
    affine = np.diag([0.7, 0.7, 5.0, 1.0])
    out = AdjacentSlices(context)(MetaTensor(torch.from_numpy(volume), affine=torch.from_numpy(affine)))
    assert isinstance(out, MetaTensor) and tuple(out.shape) == (2 * context + 1, 5, 4, 7)
    assert np.allclose(out.affine.numpy(), affine)  # the volume's grid, kept for the masks written on it
    for channel, offset in enumerate(range(-context, context + 1)):
        expected = np.take(volume[0], np.arange(7) + offset, axis=-1, mode="clip")
        assert np.array_equal(out[channel].numpy(), expected), (channel, offset)
    # a NumPy volume stays a NumPy array; context 0 is the volume itself
    assert isinstance(AdjacentSlices(context)(volume), np.ndarray)
    assert AdjacentSlices(0)(volume) is volume


def test_refusals():
    with pytest.raises(
        ValueError, match=r"expected a channel-first volume of one channel \(1, x, y, z\), got shape \(3, 4, 4, 2\)"
    ):
        AdjacentSlices(1)(torch.zeros(3, 4, 4, 2))
    with pytest.raises(ValueError, match=r"got shape \(1, 4, 4\)"):
        AdjacentSlices(1)(torch.zeros(1, 4, 4))
    for context in (-1, 1.5, True):
        with pytest.raises(ValueError, match="context must be a whole number of slices, 0 or more"):
            AdjacentSlices(context)
    data = AdjacentSlicesd(["image"], 1)({"image": torch.zeros(1, 2, 2, 3), "label": torch.ones(1, 2, 2, 3)})
    assert data["image"].shape[0] == 3 and data["label"].shape[0] == 1  # the mask keeps its one channel


def test_ct_pipeline_and_model_settings_with_slice_context(synthetic):
    root = synthetic("ct", n=1, layout="dicom")
    entry = get_task("ct").find_pairs(root)[0]
    plain = get_task("ct").pair_transforms(None, None)(dict(entry))
    stacked = get_task("ct").pair_transforms(None, None, slice_context=1)(dict(entry))
    image, neighbours = plain["image"], stacked["image"]
    assert neighbours.shape[0] == 3 and neighbours.shape[1:] == image.shape[1:]
    assert torch.equal(neighbours[1], image[0])
    assert torch.equal(neighbours[0, ..., 1:], image[0, ..., :-1]) and torch.equal(
        neighbours[2, ..., :-1], image[0, ..., 1:]
    )
    assert torch.equal(stacked["label"], plain["label"]) and np.allclose(neighbours.affine, image.affine)

    settings = ModelSettings(task="ct", network_name="unet", spatial_size=(32, 32), task_options={"slice_context": 1})
    assert settings.in_channels == 3
    network = build_network(settings)
    assert network(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 32, 32)
    assert ModelSettings(task="ct", network_name="unet", spatial_size=(32, 32)).in_channels == 1
    with pytest.raises(SettingsError, match="task_options: slice_context must be a whole number of slices"):
        ModelSettings(task="ct", network_name="unet", spatial_size=(32, 32), task_options={"slice_context": -1})
    with pytest.raises(SettingsError, match="in_channels 1 is not what task 'ct' gives"):  # a record of the 2D input
        ModelSettings(
            task="ct", network_name="unet", spatial_size=(32, 32), task_options={"slice_context": 1}, in_channels=1
        )
