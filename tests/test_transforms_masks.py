"""MergeMasks(d): channel merge and binarisation at half the mask's maximum, checked on hand-made masks."""

from __future__ import annotations

import numpy as np
import torch

from medseg.transforms import MergeMasks, MergeMasksd, OneHotOrBinary


def test_left_and_right_masks_merge_into_one_channel():
    left = np.zeros((4, 5), np.uint8)
    right = np.zeros((4, 5), np.uint8)
    left[1, 1] = 255
    right[2, 3] = 255
    merged = MergeMasks()(np.stack([left, right]))
    expected = np.zeros((1, 4, 5), np.float32)
    expected[0, 1, 1] = expected[0, 2, 3] = 1
    np.testing.assert_array_equal(merged.numpy(), expected)


def test_binarises_at_half_the_maximum():
    # anti-aliased edges: 127 is below half of 255, 128 above
    mask = torch.tensor([[[0, 127, 128, 255]]])
    np.testing.assert_array_equal(MergeMasks()(mask).numpy(), [[[0, 0, 1, 1]]])
    # a 0/1 mask binarises the same way
    np.testing.assert_array_equal(MergeMasks()(torch.tensor([[[0, 1, 1, 0]]])).numpy(), [[[0, 1, 1, 0]]])


def test_empty_mask_stays_empty():
    assert MergeMasks()(torch.zeros(2, 3, 3)).sum() == 0


def test_dictionary_version_only_touches_its_keys():
    data = {"image": torch.full((1, 2, 2), 200.0), "label": torch.tensor([[[0.0, 255.0], [0.0, 0.0]]])}
    out = MergeMasksd("label")(data)
    assert torch.equal(out["image"], data["image"])
    np.testing.assert_array_equal(out["label"].numpy(), [[[0, 1], [0, 0]]])


def test_one_hot_or_binary_hardens_soft_labels_by_their_channel_count():
    """One channel: thresholded at 0.5 (0.5 itself is foreground); several: the one-hot of the argmax, by torch's
    own one_hot, so that every pixel keeps exactly one label."""
    binary = torch.tensor([[[0.2, 0.5, 0.7]]])
    assert torch.equal(torch.as_tensor(OneHotOrBinary()(binary)), torch.tensor([[[0.0, 1.0, 1.0]]]))
    soft = torch.rand(3, 5, 6, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.one_hot(soft.argmax(0), 3).permute(2, 0, 1).float()
    hard = torch.as_tensor(OneHotOrBinary()(soft))
    assert hard.dtype == torch.float32 and torch.equal(hard, expected)
