"""Capsule layers against the SegCaps equations, computed directly with Python loops over positions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medseg.networks import CapsuleConv2d, CapsuleConvTranspose2d, dynamic_routing, squash
from medseg.networks.capsules import _routing_states


def loop_routing(votes: torch.Tensor, bias: torch.Tensor, routings: int) -> torch.Tensor:
    """Dynamic routing written from the equations, one position at a time, in Python floats.

    votes (B, I, O, A, H, W), bias (O, A) -> (B, O, A, H, W):
    b = 0; repeat: c = softmax_o(b); s = sum_i c u + bias; v = squash(s); b += sum_a u v.
    """
    u, beta = votes.tolist(), bias.tolist()
    batch, n_in, n_out, n_atoms, height, width = votes.shape
    out = torch.zeros(batch, n_out, n_atoms, height, width, dtype=torch.float64)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                logits = [[0.0] * n_out for _ in range(n_in)]
                for _ in range(routings):
                    coupling = []
                    for i in range(n_in):
                        exps = [math.exp(value) for value in logits[i]]
                        coupling.append([e / sum(exps) for e in exps])
                    v = []
                    for o in range(n_out):
                        s = [
                            sum(coupling[i][o] * u[b][i][o][a][y][x] for i in range(n_in)) + beta[o][a]
                            for a in range(n_atoms)
                        ]
                        norm_sq = sum(value * value for value in s)
                        v.append([norm_sq / (1 + norm_sq) * value / math.sqrt(norm_sq) for value in s])
                    for i in range(n_in):
                        for o in range(n_out):
                            logits[i][o] += sum(u[b][i][o][a][y][x] * v[o][a] for a in range(n_atoms))
                out[b, :, :, y, x] = torch.tensor(v, dtype=torch.float64)
    return out


def loop_votes(layer, capsules: torch.Tensor) -> torch.Tensor:
    """Votes of every input capsule type, one convolution per type: (B, I, O, A, H', W')."""
    per_type = []
    for i in range(capsules.shape[1]):
        if isinstance(layer, CapsuleConvTranspose2d):
            conv = F.conv_transpose2d(capsules[:, i], layer.weight, stride=2, padding=1)
        else:
            conv = F.conv2d(capsules[:, i], layer.weight, stride=layer.stride, padding=layer.kernel_size // 2)
        per_type.append(conv.reshape(conv.shape[0], layer.num_capsule, layer.num_atoms, *conv.shape[-2:]))
    return torch.stack(per_type, dim=1)


def test_squash_formula_and_zero():
    s = torch.randn(3, 4, 7, 2, 2, dtype=torch.float64)
    norm = s.norm(dim=2, keepdim=True)
    expected = norm**2 / (1 + norm**2) * s / norm
    torch.testing.assert_close(squash(s, dim=2), expected)
    zero = torch.zeros(2, 5, requires_grad=True)
    value = squash(zero, dim=1)
    value.sum().backward()
    assert torch.equal(value, torch.zeros(2, 5))
    assert torch.isfinite(zero.grad).all() and torch.equal(zero.grad, torch.zeros(2, 5))


@pytest.mark.parametrize("routings", [1, 2, 3])
@pytest.mark.parametrize("chunk_bytes", [None, 200])
def test_routing_matches_loop_reference(routings, chunk_bytes):
    torch.manual_seed(routings)
    votes = torch.randn(2, 3, 4, 5, 3, 2, dtype=torch.float64)
    bias = torch.randn(4, 5, dtype=torch.float64)
    expected = loop_routing(votes, bias, routings)
    torch.testing.assert_close(dynamic_routing(votes, bias, routings, chunk_bytes=chunk_bytes), expected)
    with torch.enable_grad():  # the memory-saving autograd function runs the same forward
        out = dynamic_routing(votes.clone().requires_grad_(), bias.clone().requires_grad_(), routings, chunk_bytes)
    torch.testing.assert_close(out.detach(), expected)


@pytest.mark.slow
def test_routing_gradients_match_finite_differences():
    torch.manual_seed(0)
    votes = torch.randn(2, 2, 4, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    for chunk_bytes in (None, 100):
        assert torch.autograd.gradcheck(lambda u, b, c=chunk_bytes: dynamic_routing(u, b, 3, c), (votes, bias))


def test_couplings_sum_to_one_and_start_uniform():
    torch.manual_seed(1)
    votes = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    couplings, _ = _routing_states(votes, torch.randn(4, 5, 1, dtype=torch.float64), routings=3)
    assert couplings[0] is None  # first iteration: uniform coupling 1/num_capsule, applied as a mean
    for coupling in couplings[1:]:
        assert coupling.shape == (2, 3, 4, 6)
        torch.testing.assert_close(coupling.sum(dim=2), torch.ones(2, 3, 6, dtype=torch.float64))
        assert not torch.allclose(coupling, torch.full_like(coupling, 0.25))


@pytest.mark.parametrize(
    "layer, in_types, size, out_size",
    [
        (CapsuleConv2d(4, 3, 5, kernel_size=5, stride=1, routings=3), 2, (6, 5), (6, 5)),
        (CapsuleConv2d(4, 3, 5, kernel_size=5, stride=2, routings=3), 2, (6, 8), (3, 4)),
        (CapsuleConv2d(4, 3, 5, kernel_size=3, stride=1, routings=1), 3, (4, 4), (4, 4)),
        (CapsuleConv2d(4, 1, 5, kernel_size=1, stride=1, routings=3), 3, (4, 3), (4, 3)),
        (CapsuleConvTranspose2d(4, 3, 2, routings=3), 2, (3, 4), (6, 8)),
        (CapsuleConvTranspose2d(4, 2, 3, routings=1), 2, (2, 3), (4, 6)),
    ],
)
def test_capsule_layers_match_equations(layer, in_types, size, out_size):
    torch.manual_seed(2)
    layer = layer.double()
    capsules = torch.randn(2, in_types, layer.in_atoms, *size, dtype=torch.float64)
    expected = loop_routing(loop_votes(layer, capsules), layer.bias, layer.routings)
    out = layer(capsules)
    assert out.shape == (2, layer.num_capsule, layer.num_atoms, *out_size)
    torch.testing.assert_close(out, expected.detach())


def test_capsule_layer_initialisation_and_parameters():
    torch.manual_seed(3)
    layer = CapsuleConv2d(32, 8, 64, kernel_size=5, stride=2)
    assert layer.weight.shape == (8 * 64, 32, 5, 5) and layer.bias.shape == (8, 64)
    assert torch.equal(layer.bias, torch.full((8, 64), 0.1))
    he_std = math.sqrt(2 / (32 * 25))  # He normal: std sqrt(2 / fan_in)
    assert abs(layer.weight.std().item() - he_std) / he_std < 0.05
    up = CapsuleConvTranspose2d(32, 8, 32)
    assert up.weight.shape == (32, 8 * 32, 4, 4)


def test_capsule_layer_gradients_finite_and_errors():
    torch.manual_seed(4)
    layer = CapsuleConv2d(4, 3, 5, routings=3)
    capsules = torch.randn(2, 2, 4, 8, 8, requires_grad=True)
    layer(capsules).square().sum().backward()
    for tensor in (capsules.grad, layer.weight.grad, layer.bias.grad):
        assert torch.isfinite(tensor).all() and tensor.abs().sum() > 0
    with pytest.raises(ValueError, match=r"4 atoms.*\(2, 2, 3, 8, 8\)"):
        layer(torch.randn(2, 2, 3, 8, 8))
    with pytest.raises(ValueError, match="routings"):
        CapsuleConv2d(4, 3, 5, routings=0)


@pytest.mark.parametrize(
    "layer", [CapsuleConv2d(3, 3, 2, kernel_size=3, stride=2, routings=3), CapsuleConvTranspose2d(3, 2, 3, routings=3)]
)
def test_layer_gradients_match_finite_differences(layer):
    """The training path (votes recomputed in backward, gradients written over them) against numerical ones."""
    torch.manual_seed(5)
    layer = layer.double()
    x = torch.randn(2, 2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    parameters = (layer.weight.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_())

    def run(x, weight, bias):
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x,))

    assert torch.autograd.gradcheck(run, (x, *parameters))


def test_training_runs_the_blockwise_kernels_and_only_tracing_the_plain_path(monkeypatch):
    """The export path's switch (plain tensor operations while tracing or exporting) must not leak into training:
    a training step of a routed capsule layer runs the fused votes-and-routing autograd function, and only a trace
    takes the plain path (the speed of ``scripts/benchmark_networks.py`` depends on it)."""
    from medseg.networks import capsules

    calls = {"fused": 0, "plain": 0}
    fused, plain = capsules._ConvolutionalRouting.apply, capsules._route_traceable

    def count_fused(*args):
        calls["fused"] += 1
        return fused(*args)

    def count_plain(*args):
        calls["plain"] += 1
        return plain(*args)

    monkeypatch.setattr(capsules._ConvolutionalRouting, "apply", count_fused)
    monkeypatch.setattr(capsules, "_route_traceable", count_plain)
    layer = CapsuleConv2d(8, 4, 8, kernel_size=3, routings=3)
    x = torch.rand(1, 2, 8, 6, 6, requires_grad=True)
    layer(x).sum().backward()
    assert calls == {"fused": 1, "plain": 0}
    torch.jit.trace(layer, (x.detach(),), check_trace=False)
    assert calls == {"fused": 1, "plain": 1}
