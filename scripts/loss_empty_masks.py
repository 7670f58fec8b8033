"""What each registered loss gives for empty masks, and for the slices of a real CT scan, by reduction and smoothing.

Two tables for ``docs/losses.md``:

1. one empty 256×256 mask predicted confidently and correctly (logits −10 everywhere, p = 4.5e-5 per pixel, so
   Σp ≈ 2.98 false-positive mass), with MONAI's default smoothing 1e-5, with ``smooth_nr = smooth_dr = 1`` and
   with ``batch=True`` when the empty slice shares a batch with seven slices whose lungs are predicted as
   confidently; the gradient on the empty slice is reported too;
2. the 79 axial slices of the real ``ct_cip`` scan (10 without lung), shuffled into batches of 8 (as
   :class:`medseg.data.SliceSampler` serves them), predicted confidently and
   correctly (logits ±10 from the mask), and predicted with the mask shifted by one voxel (a small, real error):
   the mean loss per setting. A setting that behaves scores near 0 on the first and clearly above on the second.

    python scripts/loss_empty_masks.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import SimpleITK as sitk
import torch

from medseg.losses import LOSSES, get_loss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' helpers
from support import shared_data_root

SETTINGS = {
    "default (per item, smooth 1e-5)": {},
    "smooth_nr = smooth_dr = 1": {"smooth_nr": 1.0, "smooth_dr": 1.0},
    "batch=True": {"batch": True},
    "batch=True, smooth 1": {"batch": True, "smooth_nr": 1.0, "smooth_dr": 1.0},
}


def _loss(name: str, setting: dict) -> torch.nn.Module | None:
    """The registered loss with ``setting``, or ``None`` when it takes no such argument (pixel-wise losses)."""
    spec = LOSSES[name]
    if spec.kind == "pixel" and setting:
        return None
    weight = {"pos_weight": 3.0} if spec.needs_pos_weight else {}
    return get_loss(name, network_output="logits", **weight, **setting)


def empty_mask_table() -> None:
    empty = torch.zeros(1, 1, 256, 256)
    lungs = torch.zeros(7, 1, 256, 256)
    lungs[:, :, 64:192, 40:110] = 1
    lungs[:, :, 64:192, 146:216] = 1
    print("| loss | " + " | ".join(SETTINGS) + " | gradient on the empty slice, default |")
    print("|---|" + "---:|" * (len(SETTINGS) + 1))
    for name in sorted(LOSSES):
        cells = []
        for setting in SETTINGS.values():
            loss = _loss(name, setting)
            if loss is None:
                cells.append("")
                continue
            if setting.get("batch"):
                batch = torch.cat([empty, lungs])
                value = loss(20 * batch - 10, batch).item()
            else:
                value = loss(torch.full_like(empty, -10.0), empty).item()
            cells.append(f"{value:.4g}")
        logits = torch.full_like(empty, -10.0).requires_grad_()
        _loss(name, {})(logits, empty).backward()
        cells.append(f"{logits.grad.abs().max().item():.3g}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def ct_table() -> None:
    root = shared_data_root() / "ct_cip"
    mask = torch.from_numpy(sitk.GetArrayFromImage(sitk.ReadImage(str(root / "wholeLung-64.nrrd")))).float()
    order = torch.randperm(len(mask), generator=torch.Generator().manual_seed(0))  # shuffled, as SliceSampler
    slices = mask[order, None]  # (79, 1, 64, 64): one axial slice per item
    shifted = torch.roll(slices, shifts=1, dims=-1)
    empty = int((slices.sum((1, 2, 3)) == 0).sum())
    print(f"\n{len(slices)} slices, {empty} without lung, shuffled (seed 0) into batches of 8\n")
    print("| loss | setting | correct prediction | mask shifted by one voxel |")
    print("|---|---|---:|---:|")
    for name in ("iou", "kappa", "focal_tversky", "dice"):
        for label, setting in SETTINGS.items():
            loss = _loss(name, setting)
            values = []
            for prediction in (slices, shifted):
                batches = [
                    loss(20 * prediction[i : i + 8] - 10, slices[i : i + 8]).item() for i in range(0, len(slices), 8)
                ]
                values.append(sum(batches) / len(batches))
            print(f"| {name} | {label} | {values[0]:.4f} | {values[1]:.4f} |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    empty_mask_table()
    ct_table()
