"""SegCaps R3, R1 and basic: parameter counts, shapes, reconstruction masking, reference port, training, export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support.segcaps_port import ReferenceSegCapsR3

from medseg.losses.reconstruction import SegCapsLoss
from medseg.networks import SegCapsBasic, SegCapsR1, SegCapsR3, count_parameters

# torch.jit is deprecated in PyTorch 2.13, but MONAI's ckpt_export still exports through it
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning", "ignore:`torch.jit.:FutureWarning")


@pytest.mark.parametrize(
    "network, with_reconstruction, without",
    [(SegCapsR3, 1_425_649, 1_416_112), (SegCapsR1, 1_425_649, 1_416_112), (SegCapsBasic, 1_655_377, 1_645_840)],
)
def test_parameter_counts_match_official_code(network, with_reconstruction, without):
    assert count_parameters(lambda: network()) == with_reconstruction
    assert count_parameters(lambda: network(reconstruction=False)) == without


def test_routing_table():
    r3, r1 = SegCapsR3(), SegCapsR1()
    stride_one = ["conv_cap_2_1", "conv_cap_3_1", "conv_cap_4_1", "deconv_cap_1_2", "deconv_cap_2_2", "seg_caps"]
    others = ["conv_cap_2_2", "conv_cap_3_2", "deconv_cap_1_1", "deconv_cap_2_1", "deconv_cap_3_1"]
    assert r3.primarycaps.routings == r1.primarycaps.routings == 1
    assert all(getattr(r3, name).routings == 3 for name in stride_one + others)
    assert all(getattr(r1, name).routings == 1 for name in stride_one)
    assert all(getattr(r1, name).routings == 3 for name in others)
    assert [(getattr(r3, n).num_capsule, getattr(r3, n).num_atoms) for n in others] == [
        (4, 32),
        (8, 64),
        (8, 32),
        (4, 16),
        (2, 16),
    ]


@pytest.mark.parametrize("network", [SegCapsR3, SegCapsR1, SegCapsBasic])
@pytest.mark.parametrize("shape", [(1, 1, 16, 16), (2, 1, 24, 40)])
def test_output_shapes_and_range(network, shape):
    torch.manual_seed(0)
    net = network().eval()
    with torch.no_grad():
        out = net(torch.rand(shape))
    assert isinstance(out, torch.Tensor) and out.shape == (shape[0], 1, *shape[2:])
    assert (out >= 0).all() and (out < 1).all()


def test_sizes_not_multiple_of_8():
    net = SegCapsR3(reconstruction=False)
    with pytest.raises(ValueError, match=r"multiples of 8.*\(1, 1, 20, 16\)"):
        net(torch.rand(1, 1, 20, 16))
    padded = SegCapsR3(reconstruction=False, pad_input=True)
    padded.load_state_dict(net.state_dict())
    x = torch.rand(1, 1, 20, 13)
    with torch.no_grad():
        out = padded(x)
        manual = net(F.pad(x, (0, 3, 0, 4)))[..., :20, :13]
    assert out.shape == (1, 1, 20, 13)
    torch.testing.assert_close(out, manual)
    with torch.no_grad():
        assert SegCapsBasic(reconstruction=False)(torch.rand(1, 1, 9, 11)).shape == (1, 1, 9, 11)
    with pytest.raises(ValueError, match=r"\(1, 2, 16, 16\)"):
        net(torch.rand(1, 2, 16, 16))


def test_matches_reference_port_outputs_and_gradients():
    torch.manual_seed(1)
    fast = SegCapsR3(reconstruction=False).double()
    reference = ReferenceSegCapsR3().double()
    reference.load_state_dict(fast.state_dict())
    x = torch.rand(2, 1, 24, 16, dtype=torch.float64)
    outputs = []
    for net in (fast, reference):
        out = net(x)
        out.square().sum().backward()
        outputs.append((out.detach(), {name: p.grad for name, p in net.named_parameters()}))
    torch.testing.assert_close(outputs[0][0], outputs[1][0])
    for name, grad in outputs[0][1].items():
        torch.testing.assert_close(grad, outputs[1][1][name], msg=name)


def test_reconstruction_is_masked_by_the_label():
    torch.manual_seed(2)
    net = SegCapsR3(in_channels=1)
    x = torch.rand(2, 1, 16, 16)
    y = (torch.rand(2, 1, 16, 16) > 0.5).float()
    with torch.no_grad():
        out = net(x, y)
        capsules = net.capsules(x)  # (B, 1, 16, H, W)
    assert out.shape == (2, 2, 16, 16)
    torch.testing.assert_close(out[:, :1], capsules.norm(dim=2))
    decoder = net.reconstruction

    def decode(vectors):  # vectors (N, 16): the 1x1 convolutions as matrix products
        hidden = F.relu(vectors @ decoder.recon_1.weight[:, :, 0, 0].T + decoder.recon_1.bias)
        hidden = F.relu(hidden @ decoder.recon_2.weight[:, :, 0, 0].T + decoder.recon_2.bias)
        return torch.sigmoid(hidden @ decoder.out_recon.weight[:, :, 0, 0].T + decoder.out_recon.bias)

    vectors = capsules[:, 0].permute(0, 2, 3, 1).reshape(-1, 16)
    keep = y.permute(0, 2, 3, 1).reshape(-1, 1)
    expected = decode(vectors * keep).reshape(2, 16, 16, 1).permute(0, 3, 1, 2)
    torch.testing.assert_close(out[:, 1:], expected)
    background = decode(torch.zeros(1, 16))
    assert torch.allclose(out[:, 1:][y == 0], background.expand(int((y == 0).sum()), 1).flatten())


def test_inference_reconstruction_uses_the_predicted_mask():
    torch.manual_seed(3)
    net = SegCapsR3().eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        segmentation, reconstruction = net.segment_and_reconstruct(x, threshold=0.5)
        predicted = (segmentation > 0.5).float()
        expected = net(x, predicted)
    torch.testing.assert_close(segmentation, expected[:, :1])
    torch.testing.assert_close(reconstruction, expected[:, 1:])
    with pytest.raises(ValueError, match="reconstruction=False"):
        SegCapsR3(reconstruction=False)(x, predicted)
    with pytest.raises(ValueError, match=r"mask must have shape \(1, 1, 16, 16\)"):
        net(x, torch.ones(1, 1, 8, 8))


@pytest.mark.slow
@pytest.mark.parametrize("network", [SegCapsR3, SegCapsBasic])
def test_a_few_steps_lower_the_segcaps_loss(network):
    torch.manual_seed(4)
    x = torch.rand(2, 1, 16, 16) * 0.2
    y = torch.zeros(2, 1, 16, 16)
    y[:, :, 4:12, 3:11] = 1
    x = x + 0.6 * y
    net = network()
    loss_function = SegCapsLoss(torch.nn.BCELoss(), recon_weight=100.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    target = torch.cat([y, x], dim=1)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = loss_function(net(x, y), target)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_traces_for_export():
    torch.manual_seed(5)
    net = SegCapsR3().eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        traced = torch.jit.trace(net, x)
        torch.testing.assert_close(traced(x), net(x))
        other = torch.rand(1, 1, 24, 32)
        torch.testing.assert_close(traced(other), net(other))
