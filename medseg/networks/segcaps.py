"""SegCaps: convolutional-deconvolutional capsule networks for segmentation (R3, R1, basic).

LaLonde & Bagci, "Capsules for Object Segmentation", 2018 (arXiv:1804.04241), layer by layer as in the
official Keras code (``capsnet.py``; layer names kept so that ported weights map one to one). The
segmentation is the length of the single 16-atom segmentation capsule at each pixel, a probability in
[0, 1): apply losses and thresholds to it directly, without a sigmoid.

Reconstruction branch: the segmentation capsule, masked by a binary mask (the ground truth during training,
the predicted mask at inference), goes through 1×1 convolutions 64 (ReLU), 128 (ReLU), ``in_channels``
(sigmoid); SegCaps trains on segmentation loss + ``recon_weight`` × MSE against the image masked by the
ground truth (:class:`medseg.losses.reconstruction.SegCapsLoss`, fed by
:class:`medseg.engines.capsule.PrepareBatchSegCaps`).

``forward(x)`` returns the segmentation ``(B, 1, H, W)`` (eval or train mode, so MONAI inferers work);
``forward(x, y)`` returns ``cat([segmentation, reconstruction masked by y], dim=1)`` for training with the
reconstruction loss. :meth:`segment_and_reconstruct` gives the inference-time reconstruction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .capsules import CapsuleConv2d, CapsuleConvTranspose2d
from .utils import check_spatial_multiple, pad_to_multiple, validating

__all__ = ["SegCapsBasic", "SegCapsR1", "SegCapsR3"]


class _ReconstructionDecoder(nn.Sequential):
    """1×1 convolutions 64 (ReLU), 128 (ReLU), ``out_channels`` (sigmoid), He-normal kernels, zero biases."""

    def __init__(self, in_atoms: int, out_channels: int) -> None:
        super().__init__()
        self.recon_1 = nn.Conv2d(in_atoms, 64, 1)
        self.recon_2 = nn.Conv2d(64, 128, 1)
        self.out_recon = nn.Conv2d(128, out_channels, 1)
        for conv in (self.recon_1, self.recon_2, self.out_recon):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(self, capsules: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        masked = (capsules * mask.unsqueeze(2)).flatten(1, 2)
        hidden = F.relu(self.recon_2(F.relu(self.recon_1(masked))))
        return torch.sigmoid(self.out_recon(hidden))


class _SegCaps(nn.Module):
    """Shared forward logic: size check or padding, segmentation length, reconstruction."""

    size_multiple = 1

    def __init__(self, in_channels: int, reconstruction: bool, pad_input: bool) -> None:
        super().__init__()
        self.in_channels, self.pad_input = in_channels, pad_input
        self.reconstruction = _ReconstructionDecoder(16, in_channels) if reconstruction else None

    def _init_conv1(self) -> None:
        """Keras' defaults for the plain first convolution: Glorot-uniform kernel, zero bias."""
        nn.init.xavier_uniform_(self.conv1.weight)
        nn.init.zeros_(self.conv1.bias)

    def capsules(self, x: torch.Tensor) -> torch.Tensor:
        """The segmentation capsules ``(B, 1, 16, H, W)`` of an input whose size is already valid."""
        raise NotImplementedError

    def _checked(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if validating() and (x.ndim != 4 or x.shape[1] != self.in_channels):
            raise ValueError(
                f"{type(self).__name__} expects input (batch, {self.in_channels}, height, width), "
                f"got shape {tuple(x.shape)}"
            )
        if (
            validating()
            and y is not None
            and (y.ndim != 4 or y.shape[1] != 1 or y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[2:])
        ):
            raise ValueError(
                f"the mask must have shape {(x.shape[0], 1, *x.shape[2:])} to match the input "
                f"{tuple(x.shape)}, got {tuple(y.shape)}"
            )
        if not self.pad_input:
            check_spatial_multiple(x, self.size_multiple, type(self).__name__)
            return x, y
        x, _ = pad_to_multiple(x, self.size_multiple)
        return x, None if y is None else pad_to_multiple(y, self.size_multiple)[0]

    def _decoder(self) -> _ReconstructionDecoder:
        if self.reconstruction is None:
            raise ValueError(f"{type(self).__name__} was built with reconstruction=False: it has no reconstruction")
        return self.reconstruction

    def _segment(
        self, x: torch.Tensor, mask: torch.Tensor | None, threshold: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Segmentation, and the reconstruction masked by ``mask`` (or by ``segmentation > threshold``) if asked."""
        height, width = x.shape[-2:]
        x, mask = self._checked(x, mask)
        capsules = self.capsules(x)
        lengths = torch.linalg.vector_norm(capsules, dim=2)
        segmentation = lengths[..., :height, :width]
        if mask is None and threshold is None:
            return segmentation, None
        if mask is None:
            mask = lengths > threshold
        reconstruction = self._decoder()(capsules, mask.to(capsules.dtype))
        return segmentation, reconstruction[..., :height, :width]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Segmentation ``(B, 1, H, W)``; with a mask ``y`` (B, 1, H, W): ``cat([segmentation, reconstruction])``."""
        segmentation, reconstruction = self._segment(x, y)
        return segmentation if reconstruction is None else torch.cat([segmentation, reconstruction], dim=1)

    def segment_and_reconstruct(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, threshold: float = 0.5
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Segmentation and reconstruction; masked by ``mask``, else by the predicted mask (length > ``threshold``)."""
        return self._segment(x, mask, threshold)


class _SegCapsUNet(_SegCaps):
    """The SegCaps encoder-decoder; ``routings`` is used on the stride-1 capsule layers."""

    size_multiple = 8

    def __init__(self, in_channels: int, reconstruction: bool, pad_input: bool, routings: int) -> None:
        super().__init__(in_channels, reconstruction, pad_input)
        self.conv1 = nn.Conv2d(in_channels, 16, 5, padding=2)
        self.primarycaps = CapsuleConv2d(16, 2, 16, 5, stride=2, routings=1)
        self.conv_cap_2_1 = CapsuleConv2d(16, 4, 16, 5, routings=routings)
        self.conv_cap_2_2 = CapsuleConv2d(16, 4, 32, 5, stride=2, routings=3)
        self.conv_cap_3_1 = CapsuleConv2d(32, 8, 32, 5, routings=routings)
        self.conv_cap_3_2 = CapsuleConv2d(32, 8, 64, 5, stride=2, routings=3)
        self.conv_cap_4_1 = CapsuleConv2d(64, 8, 32, 5, routings=routings)
        self.deconv_cap_1_1 = CapsuleConvTranspose2d(32, 8, 32, 4, routings=3)
        self.deconv_cap_1_2 = CapsuleConv2d(32, 4, 32, 5, routings=routings)
        self.deconv_cap_2_1 = CapsuleConvTranspose2d(32, 4, 16, 4, routings=3)
        self.deconv_cap_2_2 = CapsuleConv2d(16, 4, 16, 5, routings=routings)
        self.deconv_cap_3_1 = CapsuleConvTranspose2d(16, 2, 16, 4, routings=3)
        self.seg_caps = CapsuleConv2d(16, 1, 16, 1, routings=routings)
        self._init_conv1()

    def capsules(self, x: torch.Tensor) -> torch.Tensor:
        conv1 = F.relu(self.conv1(x)).unsqueeze(1)  # one capsule type of 16 atoms
        cap_2_1 = self.conv_cap_2_1(self.primarycaps(conv1))
        cap_3_1 = self.conv_cap_3_1(self.conv_cap_2_2(cap_2_1))
        cap_4_1 = self.conv_cap_4_1(self.conv_cap_3_2(cap_3_1))
        up_1 = torch.cat([self.deconv_cap_1_1(cap_4_1), cap_3_1], dim=1)
        up_2 = torch.cat([self.deconv_cap_2_1(self.deconv_cap_1_2(up_1)), cap_2_1], dim=1)
        up_3 = torch.cat([self.deconv_cap_3_1(self.deconv_cap_2_2(up_2)), conv1], dim=1)
        return self.seg_caps(up_3)


class SegCapsR3(_SegCapsUNet):
    """SegCaps R3: three routing iterations on every capsule layer but the primary capsules.

    Layer table (kernel, capsule types × atoms, stride, routings): conv1 5, 16 filters, ReLU → primary caps
    5, 2×16, s2, r1 → 5, 4×16, s1, r3 → 5, 4×32, s2, r3 → 5, 8×32, s1, r3 → 5, 8×64, s2, r3 → 5, 8×32, s1, r3
    → up 4, 8×32, ×2, r3 ‖ 8×32 stage → 5, 4×32, s1, r3 → up 4, 4×16, ×2, r3 ‖ 4×16 stage → 5, 4×16, s1, r3
    → up 4, 2×16, ×2, r3 ‖ conv1 (1×16) → 1, 1×16, s1, r3 → length. 1,416,112 parameters, 1,425,649 with
    the reconstruction branch (one input channel).

    Args:
        in_channels: image channels.
        reconstruction: build the reconstruction branch (needed for the SegCaps loss).
        pad_input: zero-pad inputs whose height or width is not a multiple of 8 (bottom/right) and crop the
            outputs back; otherwise such inputs raise a ``ValueError``.
    """

    def __init__(self, in_channels: int = 1, reconstruction: bool = True, pad_input: bool = False) -> None:
        super().__init__(in_channels, reconstruction, pad_input, routings=3)


class SegCapsR1(_SegCapsUNet):
    """SegCaps R1: as :class:`SegCapsR3` with one routing iteration on the stride-1 capsule layers.

    Args: as :class:`SegCapsR3`.
    """

    def __init__(self, in_channels: int = 1, reconstruction: bool = True, pad_input: bool = False) -> None:
        super().__init__(in_channels, reconstruction, pad_input, routings=1)


class SegCapsBasic(_SegCaps):
    """Baseline capsule network: conv1 5×5, 256 filters, ReLU → primary caps 5, 8×32, s1, r1 → 1, 1×16, r3.

    Works at full resolution (any input size). 1,655,377 parameters with the reconstruction branch.

    Args:
        in_channels: image channels.
        reconstruction: build the reconstruction branch.
        pad_input: accepted for a uniform interface; no size requirement exists.
    """

    def __init__(self, in_channels: int = 1, reconstruction: bool = True, pad_input: bool = False) -> None:
        super().__init__(in_channels, reconstruction, pad_input)
        self.conv1 = nn.Conv2d(in_channels, 256, 5, padding=2)
        self.primarycaps = CapsuleConv2d(256, 8, 32, 5, routings=1)
        self.seg_caps = CapsuleConv2d(32, 1, 16, 1, routings=3)
        self._init_conv1()

    def capsules(self, x: torch.Tensor) -> torch.Tensor:
        return self.seg_caps(self.primarycaps(F.relu(self.conv1(x)).unsqueeze(1)))
