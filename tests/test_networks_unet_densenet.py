"""UNet2D and FC-DenseNet: parameter counts from closed forms, shapes, size requirements, training steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg.networks import FCDenseNet, UNet2D, count_parameters


def conv(cin, cout, k):
    return cin * cout * k * k + cout


def unet_closed_form(cin, cout, features):
    total, channels = 0, cin
    for f in features:  # encoder: two 3x3 convolutions per level
        total += conv(channels, f, 3) + conv(f, f, 3)
        channels = f
    for deep, shallow in zip(features[::-1], features[::-1][1:]):  # 2x2 transposed conv, then two 3x3
        total += conv(deep, shallow, 2) + conv(2 * shallow, shallow, 3) + conv(shallow, shallow, 3)
    return total + conv(features[0], cout, 1)


def tiramisu_closed_form(cin, cout, layers, growth, first=48):
    """Jégou et al.: dense layer = BN(2c) + 3x3 conv; TD = BN + 1x1 conv; TU = 3x3 transposed conv."""

    def block(channels, n):
        total = 0
        for i in range(n):
            total += 2 * (channels + i * growth) + conv(channels + i * growth, growth, 3)
        return total

    pools = len(layers) // 2
    total, channels, skips = conv(cin, first, 3), first, []
    for n in layers[:pools]:
        total += block(channels, n)
        channels += growth * n
        skips.append(channels)
        total += 2 * channels + conv(channels, channels, 1)
    total += block(channels, layers[pools])
    upsampled = growth * layers[pools]
    for i, n in enumerate(layers[pools + 1 :]):
        total += conv(upsampled, upsampled, 3)
        channels = upsampled + skips[-1 - i]
        total += block(channels, n)
        upsampled = growth * n
    return total + conv(channels + growth * layers[-1], cout, 1)


def test_unet_parameter_count():
    assert count_parameters(UNet2D(1, 1)) == unet_closed_form(1, 1, (32, 64, 128, 256, 512)) == 7_759_521


@pytest.mark.parametrize(
    "variant, layers, growth, paper_millions",
    [(56, (4,) * 11, 12, 1.5), (67, (5,) * 11, 16, 3.5), (103, (4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4), 16, 9.4)],
)
def test_fcdensenet_parameter_counts(variant, layers, growth, paper_millions):
    # CamVid configuration of the paper: 3 input channels, 11 classes
    count = count_parameters(lambda: FCDenseNet(variant, in_channels=3, out_channels=11))
    assert count == tiramisu_closed_form(3, 11, layers, growth)
    assert abs(count / 1e6 - paper_millions) / paper_millions < 0.1


def test_fcdensenet_structure():
    net = FCDenseNet(103, in_channels=3, out_channels=11)
    assert net.first_conv.out_channels == 48
    td = net.transitions_down[0]
    assert [type(m).__name__ for m in td[0]] == ["BatchNorm2d", "ReLU", "Conv2d", "Dropout"]
    assert td[0][2].kernel_size == (1, 1) and td[0][3].p == 0.2 and isinstance(td[1], torch.nn.MaxPool2d)
    tu = net.transitions_up[0].deconv
    assert tu.kernel_size == (3, 3) and tu.stride == (2, 2)
    assert tu.in_channels == tu.out_channels == 15 * 16  # only the bottleneck's new feature maps are upsampled
    assert [len(b.layers) for b in net.down_blocks] == [4, 5, 7, 10, 12]
    assert len(net.bottleneck.layers) == 15 and [len(b.layers) for b in net.up_blocks] == [12, 10, 7, 5, 4]


@pytest.mark.parametrize("network, multiple", [(lambda **k: UNet2D(**k), 16), (lambda **k: FCDenseNet(56, **k), 32)])
def test_shapes_and_size_requirement(network, multiple):
    torch.manual_seed(0)
    net = network(in_channels=1, out_channels=2).eval()
    with torch.no_grad():
        for shape in [(1, 1, multiple, multiple), (2, 1, 2 * multiple, 3 * multiple)]:
            assert net(torch.rand(shape)).shape == (shape[0], 2, *shape[2:])
        with pytest.raises(ValueError, match=rf"multiples of {multiple}.*\(1, 1, {multiple + 4}, {multiple}\)"):
            net(torch.rand(1, 1, multiple + 4, multiple))
        padded = network(in_channels=1, out_channels=2, pad_input=True).eval()
        padded.load_state_dict(net.state_dict())
        x = torch.rand(1, 1, multiple + 4, multiple - 3)
        expected = net(F.pad(x, (0, 3, 0, multiple - 4)))[..., : multiple + 4, : multiple - 3]
        torch.testing.assert_close(padded(x), expected)
