"""compute_pos_weight against pixel counts done by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.losses import compute_pos_weight


def test_ratio_over_masks_with_foreground_only():
    a = np.zeros((4, 4))
    a[0, :2] = 1  # 2 positive, 14 negative
    b = torch.zeros(2, 4)
    b[1, 1:] = 1  # 3 positive, 5 negative
    empty = np.zeros((10, 10))  # ignored: no foreground
    assert compute_pos_weight([a, empty, b]) == pytest.approx((14 + 5) / (2 + 3))


def test_no_foreground_is_an_error():
    with pytest.raises(ValueError, match="no mask has a foreground pixel"):
        compute_pos_weight([np.zeros((3, 3))])
