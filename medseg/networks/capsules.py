"""Capsule layers of SegCaps: squash, locally-constrained dynamic routing, convolutional capsule layers.

LaLonde & Bagci, "Capsules for Object Segmentation", 2018 (arXiv:1804.04241), following the official
Keras implementation (``capsule_layers.py``). Capsule tensors are laid out as
``(batch, capsule types, atoms, height, width)`` so that folding the capsule types into the batch for the
shared convolution, and reading the votes back, are views without copies.

A convolutional capsule layer with ``I`` input types, ``O`` output types of ``A`` atoms computes, with one
k×k convolution ``W`` shared by all input types (weight ``[O·A, in_atoms, k, k]``):

    votes  u[i, o, :, p] = (W ⋆ x_i)[o, :, p]                         for every position p
    logits b[i, o, p] = 0;  repeat ``routings`` times:
        c[i, :, p]  = softmax_o(b[i, :, p])
        s[o, :, p]  = Σ_i c[i, o, p] · u[i, o, :, p] + bias[o, :]
        v[o, :, p]  = squash(s[o, :, p])
        b[i, o, p] += Σ_atoms u[i, o, :, p] · v[o, :, p]
    output v,     squash(s) = (|s|² / (1 + |s|²)) · s / |s| = s · |s| / (1 + |s|²)

With one routing iteration, or a single output type, the coupling is uniform (``1/O``) and the layer is
linear up to the squash: ``s = (W ⋆ Σ_i x_i) / O + bias``, which is computed that way (one convolution of the
summed input types instead of ``I``). Otherwise, in training, the votes convolution and the routing run in
one autograd function (:class:`_ConvolutionalRouting`) that keeps only the layer's input: the backward
pass recomputes the votes with one convolution and the routing states from them. Routing is independent
per position, so it runs on blocks of positions (about ``CPU_CHUNK_BYTES`` of votes) whose temporaries
stay small; no votes-sized temporary is ever allocated. Outputs equal the equations up to float rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .utils import tracing, validating

__all__ = ["CapsuleConv2d", "CapsuleConvTranspose2d", "dynamic_routing", "squash"]

# Votes per block of positions routed at once: the block's temporaries stay cache-sized and below glibc's
# mmap threshold (32 MiB), so they reuse heap memory instead of faulting in fresh pages (docs/networks.md).
CPU_CHUNK_BYTES = 2 * 2**20
CUDA_CHUNK_BYTES = 64 * 2**20


def squash(input: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """``squash(s) = (|s|²/(1+|s|²)) · s/|s|`` along ``dim`` (the atoms), written ``s·|s|/(1+|s|²)``.

    The second form is the same function but is defined at ``s = 0`` (value 0, gradient 0), where the
    original Keras code divides by zero.
    """
    norm = torch.linalg.vector_norm(input, dim=dim, keepdim=True)
    return input * (norm / (1 + norm * norm))


def _squash_scale(preact: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``|s|²`` and the factor ``|s|/(1+|s|²)`` for preactivations ``(b, O, A, p)`` (atoms on axis 2)."""
    norm_sq = preact.square().sum(2, keepdim=True)
    return norm_sq, norm_sq.sqrt().div_(norm_sq + 1)


def _squash_backward(preact: torch.Tensor, grad_act: torch.Tensor) -> torch.Tensor:
    """Gradient of ``v = s·g(|s|)``, ``g(n) = n/(1+n²)``: ``g·∂v + s·(s·∂v)·g'(n)/n``, ``g'(n) = (1-n²)/(1+n²)²``."""
    norm_sq, scale = _squash_scale(preact)
    tiny = torch.finfo(preact.dtype).tiny
    coef = (1 - norm_sq).div_((norm_sq + 1).square_().mul_(norm_sq.sqrt().clamp_min_(tiny)))
    coef.mul_((grad_act * preact).sum(2, keepdim=True))
    return torch.addcmul(grad_act * scale, preact, coef)


def _routing_states(
    votes: torch.Tensor, bias: torch.Tensor, routings: int, known_couplings: list[torch.Tensor] | None = None
):
    """Couplings and preactivations of every routing iteration on one block of votes ``(b, I, O, A, p)``.

    ``couplings[0]`` is ``None`` (uniform coupling ``1/O``); the output is ``squash(preacts[-1])``. Given the
    couplings of iterations 1… (``known_couplings``, saved by a forward pass), only the preactivations are
    computed.
    """
    couplings: list[torch.Tensor | None] = [None]
    preacts = [votes.sum(1).div_(votes.shape[2]).add_(bias)]
    for iteration in range(1, routings):
        if known_couplings is None:
            act = preacts[-1] * _squash_scale(preacts[-1])[1]
            agreement = torch.mul(votes, act.unsqueeze(1)).sum(3)
            logits = agreement if iteration == 1 else logits.add_(agreement)  # noqa: F821 (bound at iteration 1)
            coupling = torch.softmax(logits, dim=2)
        else:
            coupling = known_couplings[iteration - 1]
        couplings.append(coupling)
        preacts.append(torch.mul(votes, coupling.unsqueeze(3)).sum(1).add_(bias))
    return couplings, preacts


def _routing_backward(
    votes: torch.Tensor,
    bias: torch.Tensor,
    routings: int,
    grad_act: torch.Tensor,
    grad_votes: torch.Tensor,
    known_couplings: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Backward of the routing on one block: writes ``∂L/∂votes`` into ``grad_votes``, returns ``∂L/∂bias``.

    With ``b_{t+1} = b_t + Σ_atoms u·v_t`` and ``c_t = softmax(b_t)``, going back from the last iteration:
    ``∂v_t`` receives ``Σ_i G_{t+1}·u`` (G = gradient of the logits), ``∂u`` receives ``c_t ⊗ ∂s_t`` and
    ``G_{t+1} ⊗ v_t``, and ``G_t = G_{t+1} + c_t·(∂c_t − Σ_o c_t·∂c_t)`` with ``∂c_t = Σ_atoms u·∂s_t``.
    Every read of the votes happens before ``grad_votes`` is written, so ``grad_votes`` may be ``votes``.
    """
    couplings, preacts = _routing_states(votes, bias, routings, known_couplings)
    num_out = votes.shape[2]
    products: list[tuple[torch.Tensor, torch.Tensor]] = []  # ∂votes = Σ left ⊗ right + uniform share
    grad_logits = None
    grad_bias = torch.zeros_like(bias)
    for iteration in reversed(range(routings)):
        preact, coupling = preacts[iteration], couplings[iteration]
        if grad_logits is not None:
            grad_act = torch.mul(votes, grad_logits.unsqueeze(3)).sum(1)
            products.append((grad_logits.unsqueeze(3), (preact * _squash_scale(preact)[1]).unsqueeze(1)))
        grad_preact = _squash_backward(preact, grad_act)
        grad_bias += grad_preact.sum((0, 3)).unsqueeze(-1)
        if coupling is None:
            continue
        products.append((coupling.unsqueeze(3), grad_preact.unsqueeze(1)))
        grad_coupling = torch.mul(votes, grad_preact.unsqueeze(1)).sum(3)
        grad_coupling.sub_((coupling * grad_coupling).sum(2, keepdim=True)).mul_(coupling)
        grad_logits = grad_coupling if grad_logits is None else grad_logits + grad_coupling  # (kept in products)
    uniform_share = grad_preact.div_(num_out).unsqueeze(1)  # first iteration: coupling 1/O
    if not products:
        grad_votes.copy_(uniform_share.expand_as(grad_votes))
        return grad_bias
    torch.mul(*products[0], out=grad_votes)
    for left, right in products[1:]:
        grad_votes.addcmul_(left, right)
    grad_votes.add_(uniform_share)
    return grad_bias


def _blocks(batch: int, positions: int, bytes_per_position: int, chunk_bytes: float) -> list[tuple[slice, slice]]:
    """(batch, position) slices of about ``chunk_bytes`` of votes each, the positions split evenly."""
    per_sample = positions * bytes_per_position
    if per_sample <= chunk_bytes:
        step = max(1, int(chunk_bytes // per_sample))
        return [(slice(b, b + step), slice(None)) for b in range(0, batch, step)]
    pieces = math.ceil(per_sample / chunk_bytes)
    step = math.ceil(positions / pieces)
    return [(slice(b, b + 1), slice(p, p + step)) for b in range(batch) for p in range(0, positions, step)]


def _vote_blocks(votes: torch.Tensor, chunk_bytes: float) -> list[tuple[slice, slice]]:
    """Blocks of votes laid out ``(B, I, O, A, P)``."""
    return _blocks(votes.shape[0], votes.shape[-1], votes[0, ..., 0].numel() * votes.element_size(), chunk_bytes)


def _route(votes: torch.Tensor, bias: torch.Tensor, routings: int, chunk_bytes: float) -> torch.Tensor:
    """Routing forward of votes ``(B, I, O, A, P)`` block by block; returns the activations ``(B, O, A, P)``."""
    batch, _, num_out, num_atoms, positions = votes.shape
    out = votes.new_empty((batch, num_out, num_atoms, positions))
    for samples, cells in _vote_blocks(votes, chunk_bytes):
        preact = _routing_states(votes[samples, ..., cells], bias, routings)[1][-1]
        torch.mul(preact, _squash_scale(preact)[1], out=out[samples, ..., cells])
    return out


class _DynamicRouting(torch.autograd.Function):
    """Routing whose backward pass keeps only the votes and recomputes the routing states block by block."""

    @staticmethod
    def forward(ctx, votes: torch.Tensor, bias: torch.Tensor, routings: int, chunk_bytes: float) -> torch.Tensor:
        ctx.save_for_backward(votes, bias)
        ctx.routings, ctx.chunk_bytes = routings, chunk_bytes
        return _route(votes, bias, routings, chunk_bytes)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        votes, bias = ctx.saved_tensors
        grad_votes = torch.empty_like(votes)
        grad_bias = torch.zeros_like(bias)
        for samples, cells in _vote_blocks(votes, ctx.chunk_bytes):
            grad_bias += _routing_backward(
                votes[samples, ..., cells],
                bias,
                ctx.routings,
                grad_output[samples, ..., cells],
                grad_votes[samples, ..., cells],
            )
        return grad_votes, grad_bias, None, None


def _chunk_bytes(device: torch.device) -> int:
    return CUDA_CHUNK_BYTES if device.type == "cuda" else CPU_CHUNK_BYTES


def _eager(device: torch.device) -> bool:
    """Whether the blockwise kernels apply: not while tracing or exporting (``tracing()``), nor under autocast."""
    return not (tracing() or torch.is_autocast_enabled(device.type))


def _wants_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def dynamic_routing(
    votes: torch.Tensor, bias: torch.Tensor, routings: int, chunk_bytes: float | None = None
) -> torch.Tensor:
    """Locally-constrained dynamic routing of ``votes`` ``(B, I, O, A, *spatial)`` with ``bias`` ``(O, A)``.

    Returns the output capsules ``(B, O, A, *spatial)`` after ``routings`` iterations (see the module
    docstring for the equations). ``chunk_bytes`` sets how many votes are routed at once (default: 2 MiB on
    CPU, 64 MiB on CUDA). When gradients are needed the routing runs in an autograd function that keeps the
    votes and recomputes the routing states in its backward pass; under ``torch.jit`` tracing or
    ``torch.export`` it runs as plain tensor operations on the whole tensor, so that the recorded graph holds
    for any input size. Under autocast
    the routing runs in float32. (The capsule layers do not call this on their training path: they
    recompute the votes themselves, see :class:`_ConvolutionalRouting`.)
    """
    if routings < 1:
        raise ValueError(f"routings must be at least 1, got {routings}")
    batch, in_caps, num_out, num_atoms = votes.shape[:4]
    if validating() and bias.shape != (num_out, num_atoms):
        raise ValueError(
            f"bias shape {tuple(bias.shape)} does not match the votes {tuple(votes.shape)}: expected "
            f"({num_out}, {num_atoms})"
        )
    spatial = votes.shape[4:]
    if torch.is_autocast_enabled(votes.device.type):
        with torch.autocast(votes.device.type, enabled=False):
            return dynamic_routing(votes.float(), bias.float(), routings, chunk_bytes)
    flat = votes.reshape(batch, in_caps, num_out, num_atoms, -1)
    bias_column = bias.to(votes.dtype).unsqueeze(-1)
    if tracing():
        out = _route_traceable(flat, bias_column, routings)
    else:
        if chunk_bytes is None:
            chunk_bytes = _chunk_bytes(votes.device)
        if _wants_grad(flat, bias_column):
            out = _DynamicRouting.apply(flat, bias_column, routings, chunk_bytes)
        else:
            out = _route(flat, bias_column, routings, chunk_bytes)
    return out.reshape(batch, num_out, num_atoms, *spatial)


def _route_traceable(votes: torch.Tensor, bias: torch.Tensor, routings: int) -> torch.Tensor:
    """The routing equations as plain out-of-place tensor operations (for ``torch.jit.trace``/``torch.export``)."""
    logits = torch.zeros_like(votes[:, :, :, 0])
    for iteration in range(routings):
        coupling = torch.softmax(logits, dim=2)
        act = squash((coupling.unsqueeze(3) * votes).sum(1) + bias, dim=2)
        if iteration < routings - 1:
            logits = logits + (votes * act.unsqueeze(1)).sum(3)
    return act


@dataclass(frozen=True)
class _VotesConvolution:
    """The votes convolution of a capsule layer (plain, or transposed ×2), and its backward."""

    stride: int
    padding: int
    transposed: bool

    def __call__(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose2d(x, weight, stride=self.stride, padding=self.padding)
        return F.conv2d(x, weight, stride=self.stride, padding=self.padding)

    def output_positions(self, x: torch.Tensor, weight: torch.Tensor) -> int:
        """Number of output positions (height × width) for input ``x``."""
        kernel = weight.shape[-1]
        if self.transposed:
            sizes = [(n - 1) * self.stride - 2 * self.padding + kernel for n in x.shape[-2:]]
        else:
            sizes = [(n + 2 * self.padding - kernel) // self.stride + 1 for n in x.shape[-2:]]
        return sizes[0] * sizes[1]

    def backward(self, grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, needs: tuple[bool, ...]):
        """``(∂L/∂x, ∂L/∂weight)`` given ``∂L/∂votes`` (``None`` where not needed), as autograd computes them."""
        stride, padding = [self.stride] * 2, [self.padding] * 2
        grad_x, grad_weight, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, stride, padding, [1, 1], self.transposed, [0, 0], 1, [needs[0], needs[1], False]
        )
        return grad_x, grad_weight


def _channels_last_blocks(votes: torch.Tensor, capsule_shape: tuple[int, int, int, int], chunk_bytes: float):
    """Blocks of channels-last votes ``(B·I, O·A, H, W)``, each copied to a ``(b, I, O, A, p)`` buffer.

    Yields ``(samples, cells, source, block)``: ``source`` is the block's ``(b, I, p, O, A)`` view of the votes,
    ``block`` the contiguous copy (one buffer reused for every block) that the routing kernels work on.
    """
    batch, in_caps, num_out, num_atoms = capsule_shape
    positions = votes.shape[-2] * votes.shape[-1]
    by_position = votes.permute(0, 2, 3, 1).reshape(batch, in_caps, positions, num_out, num_atoms)
    buffer = None
    for samples, cells in _blocks(batch, positions, in_caps * num_out * num_atoms * votes.element_size(), chunk_bytes):
        source = by_position[samples, :, cells]
        if buffer is None:
            buffer = votes.new_empty((source.shape[0], in_caps, num_out, num_atoms, source.shape[2]))
        block = buffer[: source.shape[0], ..., : source.shape[2]]
        block.copy_(source.permute(0, 1, 3, 4, 2))
        yield samples, cells, source, block


def _convolve_and_route(x, weight, bias, conv, routings, chunk_bytes, capsule_shape, saved_couplings=None):
    """Votes by a channels-last convolution (faster on CPU), routed block by block: ``(B, O, A, H', W')``.

    ``saved_couplings`` ``(routings - 1, B, I, O, H'·W')`` receives the couplings of iterations 1… when given.
    """
    votes = conv(x.contiguous(memory_format=torch.channels_last), weight)
    batch, _, num_out, num_atoms = capsule_shape
    height, width = votes.shape[-2:]
    out = votes.new_empty((batch, num_out, num_atoms, height * width))
    for samples, cells, _, block in _channels_last_blocks(votes, capsule_shape, chunk_bytes):
        couplings, preacts = _routing_states(block, bias, routings)
        torch.mul(preacts[-1], _squash_scale(preacts[-1])[1], out=out[samples, ..., cells])
        if saved_couplings is not None:
            for saved, coupling in zip(saved_couplings, couplings[1:]):
                saved[samples, ..., cells] = coupling
    return out.view(batch, num_out, num_atoms, height, width)


class _ConvolutionalRouting(torch.autograd.Function):
    """Votes convolution and routing in one function that keeps only the layer input for the backward pass.

    The votes are the largest tensors of SegCaps (one per input type, output type and position); instead of
    keeping them until the backward pass, backward recomputes them with one convolution, backpropagates the
    routing block by block (writing each block's vote gradient over its recomputed votes, so no second
    votes-sized tensor is allocated) and finishes with the convolution's own backward. The couplings (an
    ``atoms``-th of the votes per iteration) are kept, which spares recomputing the agreements.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, conv, routings, chunk_bytes, capsule_shape):
        batch, in_caps, num_out, _ = capsule_shape
        positions = conv.output_positions(x, weight)
        couplings = x.new_empty((routings - 1, batch, in_caps, num_out, positions))
        ctx.save_for_backward(x, weight, bias, couplings)
        ctx.conv, ctx.routings, ctx.chunk_bytes, ctx.capsule_shape = conv, routings, chunk_bytes, capsule_shape
        return _convolve_and_route(x, weight, bias, conv, routings, chunk_bytes, capsule_shape, couplings)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x, weight, bias, couplings = ctx.saved_tensors
        x = x.contiguous(memory_format=torch.channels_last)
        votes = ctx.conv(x, weight)
        grad_output = grad_output.reshape(*grad_output.shape[:3], -1)
        grad_bias = torch.zeros_like(bias)
        for samples, cells, source, block in _channels_last_blocks(votes, ctx.capsule_shape, ctx.chunk_bytes):
            known = [coupling[samples, ..., cells] for coupling in couplings]
            grad_bias += _routing_backward(block, bias, ctx.routings, grad_output[samples, ..., cells], block, known)
            source.copy_(block.permute(0, 1, 4, 2, 3))  # the votes become their gradient, block by block
        grad_x, grad_weight = ctx.conv.backward(votes, x, weight, ctx.needs_input_grad[:2])
        return grad_x, grad_weight, grad_bias, None, None, None, None


class _CapsuleLayer(nn.Module):
    """Shared parts of the capsule layers: parameters, initialisation, routing of the votes."""

    def __init__(
        self, in_atoms: int, num_capsule: int, num_atoms: int, kernel_size: int, routings: int, weight_shape: tuple
    ) -> None:
        super().__init__()
        if routings < 1:
            raise ValueError(f"routings must be at least 1, got {routings}")
        self.in_atoms, self.num_capsule, self.num_atoms = in_atoms, num_capsule, num_atoms
        self.kernel_size, self.routings = kernel_size, routings
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.empty(num_capsule, num_atoms))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal kernels (fan-in as Keras computes it for the same weight), capsule bias 0.1."""
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        nn.init.constant_(self.bias, 0.1)

    conv: _VotesConvolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Capsules ``(B, I, in_atoms, H, W)`` → capsules ``(B, num_capsule, num_atoms, H', W')``."""
        if validating() and (x.ndim != 5 or x.shape[2] != self.in_atoms):
            raise ValueError(
                f"{type(self).__name__} expects capsules (batch, types, {self.in_atoms} atoms, height, width), "
                f"got shape {tuple(x.shape)}"
            )
        batch, in_caps = x.shape[:2]
        if self.routings == 1 or self.num_capsule == 1:  # uniform coupling: one convolution of the summed types
            summed = self.conv(x.sum(1), self.weight)
            preact = summed.view(batch, self.num_capsule, self.num_atoms, *summed.shape[-2:])
            if self.num_capsule > 1:
                preact = preact / self.num_capsule
            return squash(preact + self.bias[..., None, None], dim=2)
        folded = x.reshape(batch * in_caps, *x.shape[2:])
        if _eager(x.device):
            arguments = (
                folded,
                self.weight,
                self.bias.to(x.dtype).unsqueeze(-1),
                self.conv,
                self.routings,
                _chunk_bytes(x.device),
                (batch, in_caps, self.num_capsule, self.num_atoms),
            )
            if _wants_grad(folded, self.weight, self.bias):
                return _ConvolutionalRouting.apply(*arguments)
            return _convolve_and_route(*arguments)
        votes = self.conv(folded, self.weight)
        votes = votes.view(batch, in_caps, self.num_capsule, self.num_atoms, *votes.shape[-2:])
        return dynamic_routing(votes, self.bias, self.routings)

    def extra_repr(self) -> str:
        return (
            f"{self.in_atoms}, {self.num_capsule}x{self.num_atoms}, kernel_size={self.kernel_size}, "
            f"routings={self.routings}"
        )


class CapsuleConv2d(_CapsuleLayer):
    """Convolutional capsule layer (SegCaps ``ConvCapsuleLayer``), "same" padding ``kernel_size // 2``.

    Args:
        in_atoms: atoms per input capsule.
        num_capsule: output capsule types.
        num_atoms: atoms per output capsule.
        kernel_size: odd kernel size of the shared convolution.
        stride: 1 or 2 (the output has ``ceil(H / stride)`` rows).
        routings: dynamic routing iterations.

    PyTorch pads a stride-2 convolution symmetrically where TensorFlow's "same" pads one pixel less before
    than after: the output grid is the same size, shifted by one input pixel (only relevant when porting
    Keras weights).
    """

    def __init__(
        self, in_atoms: int, num_capsule: int, num_atoms: int, kernel_size: int = 5, stride: int = 1, routings: int = 3
    ) -> None:
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        super().__init__(
            in_atoms,
            num_capsule,
            num_atoms,
            kernel_size,
            routings,
            (num_capsule * num_atoms, in_atoms, kernel_size, kernel_size),
        )
        self.stride = stride
        self.conv = _VotesConvolution(stride, kernel_size // 2, transposed=False)


class CapsuleConvTranspose2d(_CapsuleLayer):
    """Transposed convolutional capsule layer (SegCaps ``DeconvCapsuleLayer``, "deconv"): ×2 upsampling.

    Kernel 4, stride 2, padding 1 (TensorFlow's "same" for this kernel): ``(H, W)`` → ``(2H, 2W)``. The weight is
    ``[in_atoms, num_capsule·num_atoms, 4, 4]``.
    """

    def __init__(
        self, in_atoms: int, num_capsule: int, num_atoms: int, kernel_size: int = 4, routings: int = 3
    ) -> None:
        if kernel_size < 2 or kernel_size % 2:
            raise ValueError(f"kernel_size must be even for an exact x2 upsampling, got {kernel_size}")
        super().__init__(
            in_atoms,
            num_capsule,
            num_atoms,
            kernel_size,
            routings,
            (in_atoms, num_capsule * num_atoms, kernel_size, kernel_size),
        )

        self.conv = _VotesConvolution(2, (kernel_size - 2) // 2, transposed=True)
