"""Reference port of SegCaps for the tests and the benchmark: a straightforward PyTorch translation of Keras.

LaLonde & Bagci (2018), official Keras implementation (``capsule_layers.py``, ``capsnet.py``): capsules
are kept channels-last as ``(batch, height, width, capsule types, atoms)``; each layer transposes the
input capsule types into the batch, runs one shared convolution, reshapes the result into the
materialised votes ``(batch, input types, height, width, output types, atoms)`` and routes them with
plain tensor operations (softmax, broadcast products, sums, norms), leaving autograd to keep every
intermediate for the backward pass. It is the baseline that ``scripts/benchmark_networks.py``
compares :class:`medseg.networks.SegCapsR3` against (same parameter names and shapes, so the state
dict of one loads into the other); it is an independent reference, not for training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ReferenceSegCapsR3"]


def reference_squash(s: torch.Tensor) -> torch.Tensor:
    """``(|s|^2 / (1 + |s|^2)) s / |s|`` over the last axis, as written in the Keras code."""
    norm = torch.norm(s, dim=-1, keepdim=True)
    norm_squared = norm * norm
    return (s / norm) * (norm_squared / (1 + norm_squared))


def reference_routing(votes: torch.Tensor, bias: torch.Tensor, routings: int) -> torch.Tensor:
    """Dynamic routing on votes ``(B, I, H, W, O, A)``; returns ``(B, H, W, O, A)``."""
    logits = votes.new_zeros(votes.shape[:-1])
    for iteration in range(routings):
        route = torch.softmax(logits, dim=-1)
        preactivate = (route.unsqueeze(-1) * votes).sum(dim=1) + bias
        activation = reference_squash(preactivate)
        if iteration < routings - 1:
            logits = logits + (votes * activation.unsqueeze(1)).sum(dim=-1)
    return activation


class ReferenceCapsuleLayer(nn.Module):
    """Convolutional (or transposed, ×2) capsule layer with routing, channels-last like the Keras code."""

    def __init__(
        self,
        in_atoms: int,
        num_capsule: int,
        num_atoms: int,
        kernel_size: int,
        stride: int = 1,
        routings: int = 3,
        transposed: bool = False,
    ) -> None:
        super().__init__()
        self.num_capsule, self.num_atoms, self.routings = num_capsule, num_atoms, routings
        self.stride, self.transposed, self.kernel_size = stride, transposed, kernel_size
        shape = (in_atoms, num_capsule * num_atoms) if transposed else (num_capsule * num_atoms, in_atoms)
        self.weight = nn.Parameter(torch.empty(*shape, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.full((num_capsule, num_atoms), 0.1))
        nn.init.kaiming_normal_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, in_caps, in_atoms = x.shape
        folded = x.permute(3, 0, 4, 1, 2).reshape(in_caps * batch, in_atoms, height, width)
        if self.transposed:
            conv = F.conv_transpose2d(folded, self.weight, stride=2, padding=1)
        else:
            conv = F.conv2d(folded, self.weight, stride=self.stride, padding=self.kernel_size // 2)
        out_h, out_w = conv.shape[-2:]
        votes = conv.reshape(in_caps, batch, self.num_capsule, self.num_atoms, out_h, out_w)
        votes = votes.permute(1, 0, 4, 5, 2, 3)
        return reference_routing(votes, self.bias, self.routings)


class ReferenceSegCapsR3(nn.Module):
    """SegCaps R3 without the reconstruction branch; returns the segmentation capsule's length ``(B, 1, H, W)``."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        layer = ReferenceCapsuleLayer
        self.conv1 = nn.Conv2d(in_channels, 16, 5, padding=2)
        self.primarycaps = layer(16, 2, 16, 5, stride=2, routings=1)
        self.conv_cap_2_1 = layer(16, 4, 16, 5)
        self.conv_cap_2_2 = layer(16, 4, 32, 5, stride=2)
        self.conv_cap_3_1 = layer(32, 8, 32, 5)
        self.conv_cap_3_2 = layer(32, 8, 64, 5, stride=2)
        self.conv_cap_4_1 = layer(64, 8, 32, 5)
        self.deconv_cap_1_1 = layer(32, 8, 32, 4, transposed=True)
        self.deconv_cap_1_2 = layer(32, 4, 32, 5)
        self.deconv_cap_2_1 = layer(32, 4, 16, 4, transposed=True)
        self.deconv_cap_2_2 = layer(16, 4, 16, 5)
        self.deconv_cap_3_1 = layer(16, 2, 16, 4, transposed=True)
        self.seg_caps = layer(16, 1, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv1 = F.relu(self.conv1(x)).permute(0, 2, 3, 1).unsqueeze(3)
        cap_2_1 = self.conv_cap_2_1(self.primarycaps(conv1))
        cap_3_1 = self.conv_cap_3_1(self.conv_cap_2_2(cap_2_1))
        cap_4_1 = self.conv_cap_4_1(self.conv_cap_3_2(cap_3_1))
        up_1 = torch.cat([self.deconv_cap_1_1(cap_4_1), cap_3_1], dim=3)
        up_2 = torch.cat([self.deconv_cap_2_1(self.deconv_cap_1_2(up_1)), cap_2_1], dim=3)
        up_3 = torch.cat([self.deconv_cap_3_1(self.deconv_cap_2_2(up_2)), conv1], dim=3)
        seg = self.seg_caps(up_3)
        return torch.norm(seg, dim=-1).permute(0, 3, 1, 2)
