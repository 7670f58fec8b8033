"""FCN-32s family: parameter counts, torchvision key layout and weight loading, upsampling, freezing, shapes."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from medseg.networks import FCN32s, count_parameters

# torchvision's published parameter totals (classifier included) and its classifier shapes.
TORCHVISION_TOTALS = {"vgg16": 138_357_544, "resnet50": 25_557_032, "alexnet": 61_100_840}
TORCHVISION_CLASSIFIERS = {
    "vgg16": {"classifier.0": (4096, 25088), "classifier.3": (4096, 4096), "classifier.6": (1000, 4096)},
    "resnet50": {"fc": (1000, 2048)},
    "alexnet": {"classifier.1": (4096, 9216), "classifier.4": (4096, 4096), "classifier.6": (1000, 4096)},
}


def torchvision_vgg16_layout() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of ``torchvision.models.vgg16().state_dict()`` (13 convolutions in ``features``)."""
    plan = [
        (0, 3, 64),
        (2, 64, 64),
        (5, 64, 128),
        (7, 128, 128),
        (10, 128, 256),
        (12, 256, 256),
        (14, 256, 256),
        (17, 256, 512),
        (19, 512, 512),
        (21, 512, 512),
        (24, 512, 512),
        (26, 512, 512),
        (28, 512, 512),
    ]
    layout = {}
    for index, cin, cout in plan:
        layout[f"features.{index}.weight"], layout[f"features.{index}.bias"] = (cout, cin, 3, 3), (cout,)
    return layout


def torchvision_alexnet_layout() -> dict[str, tuple[int, ...]]:
    plan = [(0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3)]
    layout = {}
    for index, cin, cout, k in plan:
        layout[f"features.{index}.weight"], layout[f"features.{index}.bias"] = (cout, cin, k, k), (cout,)
    return layout


def torchvision_resnet50_layout() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of torchvision's ResNet-50 (v1.5 bottlenecks, 3-4-6-3 blocks) without ``fc``."""
    layout: dict[str, tuple[int, ...]] = {}

    def bn(prefix, channels):
        for name in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{prefix}.{name}"] = (channels,)
        layout[f"{prefix}.num_batches_tracked"] = ()

    layout["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    channels = 64
    for layer, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), 1):
        for block in range(blocks):
            prefix = f"layer{layer}.{block}"
            layout[f"{prefix}.conv1.weight"] = (width, channels, 1, 1)
            bn(f"{prefix}.bn1", width)
            layout[f"{prefix}.conv2.weight"] = (width, width, 3, 3)
            bn(f"{prefix}.bn2", width)
            layout[f"{prefix}.conv3.weight"] = (4 * width, width, 1, 1)
            bn(f"{prefix}.bn3", 4 * width)
            if block == 0:
                layout[f"{prefix}.downsample.0.weight"] = (4 * width, channels, 1, 1)
                bn(f"{prefix}.downsample.1", 4 * width)
            channels = 4 * width
    return layout


LAYOUTS = {
    "vgg16": torchvision_vgg16_layout,
    "resnet50": torchvision_resnet50_layout,
    "alexnet": torchvision_alexnet_layout,
}


def numel(shape):
    return int(torch.tensor(shape).prod()) if shape else 1


@pytest.mark.parametrize("backbone", ["vgg16", "resnet50", "alexnet"])
def test_encoder_layout_matches_torchvision(backbone):
    with torch.device("meta"):
        encoder = FCN32s(backbone).encoder
    own = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
    assert own == LAYOUTS[backbone]()
    classifier = sum(numel(shape) + shape[0] for shape in TORCHVISION_CLASSIFIERS[backbone].values())
    assert count_parameters(encoder) + classifier == TORCHVISION_TOTALS[backbone]


def test_parameter_counts():
    # fc6 as a 7x7x4096 convolution: 512*49*4096 + 4096 on VGG-16, 2048*49*4096 + 4096 on ResNet-50
    counts = {b: count_parameters(lambda b=b: FCN32s(b)) for b in ("vgg16", "resnet50", "alexnet")}
    vgg_head = (512 * 49 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 + 1) + 64 * 64
    assert counts["vgg16"] == 14_714_688 + vgg_head == 134_268_737
    assert counts["resnet50"] == 23_508_032 + (2048 * 49 * 4096 + 4096) + (4096 + 1) + 64 * 64 == 434_562_113
    assert counts["alexnet"] == 2_469_696 + (256 * 4096 + 4096) + (4096 * 4096 + 4096) + 4097 + 4096 == 20_311_873


@pytest.mark.parametrize("backbone", ["vgg16", "resnet50", "alexnet"])
def test_size_policy_pads_when_asked_and_refuses_otherwise(backbone):
    torch.manual_seed(0)
    padded = FCN32s(backbone, in_channels=1, out_channels=2, fc_channels=8, pad_input=True).eval()
    strict = FCN32s(backbone, in_channels=1, out_channels=2, fc_channels=8).eval()
    strict.load_state_dict(padded.state_dict())
    with torch.no_grad():
        for size in [(32, 32), (37, 50), (64, 96)]:
            assert padded(torch.rand(2, 1, *size)).shape == (2, 2, *size)
        x = torch.rand(2, 1, 64, 96)
        torch.testing.assert_close(padded(x), strict(x))  # a multiple of 32 is not padded
    with pytest.raises(ValueError, match=r"multiples of 32, got input shape \(2, 1, 37, 50\).*pad_input=True"):
        strict(torch.rand(2, 1, 37, 50))
    with pytest.raises(ValueError, match=r"\(2, 3, 32, 32\)"):
        padded(torch.rand(2, 3, 32, 32))


def test_upsampling_is_initialised_bilinear():
    net = FCN32s("alexnet", out_channels=2, fc_channels=4)
    scores = torch.rand(1, 2, 4, 5)
    with torch.no_grad():
        up = net.upscore(scores)
    expected = F.interpolate(scores, scale_factor=32, mode="bilinear", align_corners=False)
    assert up.shape == expected.shape == (1, 2, 128, 160)
    torch.testing.assert_close(up[..., 16:-16, 16:-16], expected[..., 16:-16, 16:-16])
    assert net.upscore.weight.requires_grad and net.upscore.bias is None
    assert torch.equal(net.score.weight, torch.zeros_like(net.score.weight))


def save_torchvision_like(path, backbone, fc=None, extra=None):
    """A state dict with torchvision's keys and shapes (random values), optionally with its classifier."""
    state = {k: (torch.randn(s) if s else torch.tensor(0)) for k, s in LAYOUTS[backbone]().items()}
    if fc:
        state.update(fc)
    state.update(extra or {})
    torch.save(state, path)
    return state


def test_pretrained_vgg16_loads_encoder_and_fc_layers(tmp_path):
    torch.manual_seed(1)
    fc = {
        "classifier.0.weight": torch.randn(8, 25088),
        "classifier.0.bias": torch.randn(8),
        "classifier.3.weight": torch.randn(8, 8),
        "classifier.3.bias": torch.randn(8),
        "classifier.6.weight": torch.randn(1000, 8),
        "classifier.6.bias": torch.randn(1000),
    }
    state = save_torchvision_like(tmp_path / "vgg16.pth", "vgg16", fc)
    net = FCN32s("vgg16", fc_channels=8, pretrained_weights=tmp_path / "vgg16.pth")
    for key, value in net.encoder.state_dict().items():
        assert torch.equal(value, state[key]), key
    torch.testing.assert_close(net.head.fc6.weight, state["classifier.0.weight"].reshape(8, 512, 7, 7))
    torch.testing.assert_close(net.head.fc7.weight[:, :, 0, 0], state["classifier.3.weight"])
    grey = FCN32s("vgg16", in_channels=1, fc_channels=8, pretrained_weights=tmp_path / "vgg16.pth")
    torch.testing.assert_close(grey.encoder.features[0].weight, state["features.0.weight"].sum(1, keepdim=True))


def test_pretrained_resnet50_and_alexnet_load(tmp_path):
    torch.manual_seed(2)
    for backbone in ("resnet50", "alexnet"):
        state = save_torchvision_like(tmp_path / f"{backbone}.pth", backbone)
        net = FCN32s(backbone, fc_channels=4, pretrained_weights=tmp_path / f"{backbone}.pth")
        for key, value in net.encoder.state_dict().items():
            assert torch.equal(value, state[key]), key


def test_pretrained_errors_name_the_file_and_keys(tmp_path):
    state = save_torchvision_like(tmp_path / "broken.pth", "vgg16", extra={"features.1.weight": torch.ones(3)})
    with pytest.raises(ValueError, match=r"broken\.pth.*unexpected keys \[features\.1\.weight\]"):
        FCN32s("vgg16", fc_channels=4, pretrained_weights=tmp_path / "broken.pth")
    del state["features.1.weight"], state["features.28.bias"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"partial\.pth.*missing keys \[features\.28\.bias\]"):
        FCN32s("vgg16", fc_channels=4, pretrained_weights=tmp_path / "partial.pth")
    save_torchvision_like(tmp_path / "resnet.pth", "resnet50")
    with pytest.raises(ValueError, match=r"resnet\.pth: not a torchvision vgg16 state dict"):
        FCN32s("vgg16", fc_channels=4, pretrained_weights=tmp_path / "resnet.pth")
    save_torchvision_like(tmp_path / "vgg.pth", "vgg16")
    with pytest.raises(ValueError, match=r"vgg\.pth: tensor shapes.*features\.0\.weight \(64, 3, 3, 3\)"):
        FCN32s("vgg16", in_channels=2, fc_channels=4, pretrained_weights=tmp_path / "vgg.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match=r"list\.pth: expected a state dict"):
        FCN32s("vgg16", fc_channels=4, pretrained_weights=tmp_path / "list.pth")


@pytest.mark.parametrize(
    "backbone, trainable_block",
    [
        ("vgg16", ("features.24.", "features.26.", "features.28.")),
        ("resnet50", ("layer4.",)),
        ("alexnet", ("features.10.",)),
    ],
)
def test_freeze_encoder_keeps_only_the_last_block_trainable(backbone, trainable_block):
    net = FCN32s(backbone, fc_channels=4, freeze_encoder=True).train()
    for name, parameter in net.encoder.named_parameters():
        assert parameter.requires_grad == name.startswith(trainable_block), name
    assert all(p.requires_grad for name, p in net.named_parameters() if not name.startswith("encoder."))
    if backbone == "resnet50":
        assert not net.encoder.bn1.training and not net.encoder.layer3[0].bn1.training
        assert net.encoder.layer4[0].bn1.training


@pytest.mark.parametrize("backbone", ["vgg16", "resnet50", "alexnet"])
def test_a_few_steps_lower_the_loss(backbone):
    torch.manual_seed(3)
    net = FCN32s(backbone, out_channels=1, fc_channels=16, dropout=0.0)
    first = next(net.encoder.parameters())
    initial = first.detach().clone()
    x = torch.rand(2, 3, 64, 64) * 0.2
    y = torch.zeros(2, 1, 64, 64)
    y[:, :, 16:48, 8:40] = 1
    x = x + 0.5 * y
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # the zero-initialised score layer (Long et al.) starts every model at log(2), from
    # where Adam lowers the loss slowly but steadily
    assert all(later < earlier for earlier, later in itertools.pairwise(losses)), losses
    assert not torch.equal(first.detach(), initial)  # the gradient reached the first encoder layer
