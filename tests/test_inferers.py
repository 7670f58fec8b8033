"""``FlipAveragingInferer`` and ``ShiftAveragingInferer`` against closed forms: a position-weighted identity network,
and networks that commute with mirroring or moving; ``AutocastInferer`` against float32."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer

from medseg.inferers import AutocastInferer, FlipAveragingInferer, ShiftAveragingInferer, cpu_bfloat16, shift


def ramp(n: int) -> torch.Tensor:
    """0, 1/(n-1), ..., 1."""
    return torch.arange(n, dtype=torch.float32) / (n - 1)


def position_weighted(x: torch.Tensor) -> torch.Tensor:
    """f(x)[i, j] = x[i, j] a_i b_j, with a and b ramps from 0 to 1 along the spatial axes: not mirror-equivariant."""
    return x * ramp(x.shape[2])[:, None] * ramp(x.shape[3])[None, :]


def test_one_axis_averages_the_weights_with_their_mirror_image():
    x = torch.rand(2, 3, 8, 6, generator=torch.Generator().manual_seed(0))
    b = ramp(6)[None, :]
    # a_i + a_(n-1-i) = 1: mirroring x only leaves x * b_j / 2
    out = FlipAveragingInferer(SlidingWindowInferer(roi_size=(8, 6)), spatial_axes=[0])(x, position_weighted)
    torch.testing.assert_close(out, x * b / 2)
    # mirroring y instead: x * a_i / 2
    out = FlipAveragingInferer(SimpleInferer(), spatial_axes=[1])(x, position_weighted)
    torch.testing.assert_close(out, x * ramp(8)[:, None] / 2)


def test_two_axes_are_mirrored_one_at_a_time():
    x = torch.rand(1, 1, 5, 7, generator=torch.Generator().manual_seed(1))
    a, b = ramp(5)[:, None], ramp(7)[None, :]
    # (a b + (1 - a) b + a (1 - b)) / 3
    expected = x * (a + b - a * b) / 3
    out = FlipAveragingInferer(SimpleInferer(), spatial_axes=(0, 1))(x, position_weighted)
    torch.testing.assert_close(out, expected)


def test_no_axis_is_the_wrapped_inferer_and_an_equivariant_network_is_unchanged():
    x = torch.rand(2, 1, 9, 9, generator=torch.Generator().manual_seed(2))
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():  # a kernel symmetric under both flips: the convolution commutes with mirroring
        conv.weight.copy_(torch.tensor([[1.0, 2.0, 1.0], [3.0, 5.0, 3.0], [1.0, 2.0, 1.0]])[None, None])
        plain = conv(x)
        torch.testing.assert_close(FlipAveragingInferer(SimpleInferer(), [0, 1])(x, conv), plain)
        assert FlipAveragingInferer(SimpleInferer(), [])(x, position_weighted).equal(position_weighted(x))


def test_an_axis_the_input_lacks_is_refused_with_the_shape():
    with pytest.raises(ValueError, match=r"spatial axis 2 for an input of shape \(1, 1, 4, 4\)"):
        FlipAveragingInferer(SimpleInferer(), [2])(torch.zeros(1, 1, 4, 4), position_weighted)


def test_shift_moves_and_repeats_the_edge():
    values = torch.arange(5.0)
    assert shift(values, 2, 0).tolist() == [0, 0, 0, 1, 2]
    assert shift(values, -2, 0).tolist() == [2, 3, 4, 4, 4]
    assert shift(values, 0, 0).equal(values)
    grid = torch.arange(6.0).reshape(2, 3)
    assert shift(grid, 1, 1).tolist() == [[0, 0, 1], [3, 3, 4]]
    with pytest.raises(ValueError, match="a shift of 5 along dimension 0 of size 5"):
        shift(values, 5, 0)


def test_shift_averaging_of_a_position_weighted_network_by_hand():
    x = torch.rand(2, 1, 7, 5, generator=torch.Generator().manual_seed(3))
    n, pixels = 7, 2
    a, b = ramp(n), ramp(5)
    # along axis 0 only: pixel i sees the weights a_i, a_(i+2) (kept when i + 2 < n) and a_(i-2) (when i >= 2)
    expected = torch.empty_like(x)
    for i in range(n):
        weights = [a[i]] + ([a[i + pixels]] if i + pixels < n else []) + ([a[i - pixels]] if i >= pixels else [])
        expected[:, :, i, :] = x[:, :, i, :] * b * (sum(weights) / len(weights))
    out = ShiftAveragingInferer(SimpleInferer(), pixels=pixels, spatial_axes=[0])(x, position_weighted)
    torch.testing.assert_close(out, expected)


def test_shift_averaging_leaves_a_pointwise_network_unchanged_and_zero_pixels_is_the_wrapped_inferer():
    x = torch.rand(2, 1, 9, 8, generator=torch.Generator().manual_seed(4))

    def pointwise(t: torch.Tensor) -> torch.Tensor:
        return t**2 - 3 * t

    torch.testing.assert_close(
        ShiftAveragingInferer(SlidingWindowInferer(roi_size=(9, 8)), 3)(x, pointwise), pointwise(x)
    )
    assert ShiftAveragingInferer(SimpleInferer(), 0)(x, position_weighted).equal(position_weighted(x))
    with pytest.raises(ValueError, match=r"spatial axis 2 for an input of shape \(2, 1, 9, 8\)"):
        ShiftAveragingInferer(SimpleInferer(), 1, [2])(x, pointwise)
    with pytest.raises(ValueError, match="pixels must be 0 or more"):
        ShiftAveragingInferer(SimpleInferer(), -1)


def test_autocast_inferer_runs_the_network_in_bfloat16_and_returns_float32():
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 1, 1))
    inputs = torch.rand(2, 3, 16, 12)
    seen = []
    network[0].register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    reference = SimpleInferer()(inputs, network)
    output = AutocastInferer()(inputs, network)
    assert seen == [torch.float32, torch.bfloat16] and output.dtype == torch.float32
    # bfloat16 keeps 8 bits of mantissa: about 2-3 significant digits through two convolutions
    torch.testing.assert_close(output, reference, atol=0.02, rtol=0.02)
    assert not torch.equal(output, reference)
    output.sum().backward()  # training through it: float32 gradients for float32 weights
    assert network[0].weight.grad.dtype == torch.float32 and network[0].weight.grad.abs().sum() > 0
    assert torch.equal(AutocastInferer(enabled=False)(inputs, network), reference)
    assert isinstance(cpu_bfloat16(), bool)
