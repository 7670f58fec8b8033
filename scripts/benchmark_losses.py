"""Forward+backward time of every registered loss, side by side in one run.

Every candidate runs on the same logits and targets, interleaved round by round (in a new random
order every round, so that no candidate always follows the same neighbour; each sample averages enough
consecutive calls to last about 50 ms), and the table reports medians
and ratios against a baseline measured in the same rounds, chosen from the registry's metadata
(:class:`medseg.losses.LossSpec`): ``monai.losses.DiceLoss(sigmoid=True)`` for the region losses,
``torch.nn.BCEWithLogitsLoss(pos_weight=...)`` for the pixel-wise losses that need a positive weight
(weighted BCE), the unweighted ``torch.nn.BCEWithLogitsLoss()`` for the other pixel-wise losses (BCE,
focal, margin). Every loss is built by ``get_loss(name, network_output="logits")``. MONAI's own losses
are listed against the same baselines for information. A straightforward soft IoU that computes ``U = Σ(p + g − p·g)``
element by element is included for reference.

    python scripts/benchmark_losses.py [--rounds 30] [--device cpu|cuda|all]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch
from monai.losses import DiceLoss

from medseg.losses import LOSSES, compute_pos_weight, get_loss

SHAPES = [(8, 1, 256, 256), (2, 1, 96, 96, 96)]
REGION_BASELINE = "monai DiceLoss"
WEIGHTED_BCE_BASELINE = "torch BCEWithLogitsLoss(pos_weight)"
BCE_BASELINE = "torch BCEWithLogitsLoss()"
BASELINES = (REGION_BASELINE, WEIGHTED_BCE_BASELINE, BCE_BASELINE)


def naive_soft_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft IoU with the union computed element-wise, the way the formula reads."""
    p = torch.sigmoid(logits)
    axes = list(range(2, p.dim()))
    intersection = (p * target).sum(axes)
    union = (p + target - p * target).sum(axes)
    return (1 - (intersection + 1e-5) / (union + 1e-5)).mean()


def baseline_of(name: str) -> str:
    spec = LOSSES[name]
    if spec.kind == "region":
        return REGION_BASELINE
    return WEIGHTED_BCE_BASELINE if spec.needs_pos_weight else BCE_BASELINE


def is_medseg(name: str) -> bool:
    return LOSSES[name].factory.__module__.startswith("medseg.")


def candidates(pos_weight: float) -> dict[str, Callable]:
    losses: dict[str, Callable] = {
        REGION_BASELINE: DiceLoss(sigmoid=True),
        WEIGHTED_BCE_BASELINE: torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight)),
        BCE_BASELINE: torch.nn.BCEWithLogitsLoss(),
    }
    for name in sorted(LOSSES):
        weight = {"pos_weight": pos_weight} if LOSSES[name].needs_pos_weight else {}
        losses[name] = get_loss(name, network_output="logits", **weight)
    losses["iou, element-wise union (reference)"] = naive_soft_iou
    return losses


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_sample(loss: Callable, logits: torch.Tensor, target: torch.Tensor, calls: int) -> float:
    """Mean seconds of one forward+backward over ``calls`` consecutive calls."""
    synchronize(logits.device)
    start = time.perf_counter()
    for _ in range(calls):
        logits.grad = None
        loss(logits, target).backward()
    synchronize(logits.device)
    return (time.perf_counter() - start) / calls


def benchmark(shape: tuple[int, ...], device: torch.device, rounds: int, warmup: int = 3) -> dict[str, float]:
    gen = torch.Generator().manual_seed(0)
    target = (torch.rand(shape, generator=gen) < 0.2).float()
    logits = (torch.randn(shape, generator=gen) + 2 * target - 1).to(device).requires_grad_()
    target = target.to(device)
    pos_weight = compute_pos_weight([target.cpu()])
    losses = {
        name: loss.to(device) if isinstance(loss, torch.nn.Module) else loss
        for name, loss in candidates(pos_weight).items()
    }
    names = list(losses)
    # each sample repeats a call for about 50 ms, so that timer resolution and scheduler noise average out
    calls = max(1, round(0.05 / time_sample(losses[REGION_BASELINE], logits, target, 3)))
    times: dict[str, list[float]] = {name: [] for name in names}
    shuffler = random.Random(0)
    for r in range(warmup + rounds):
        order = shuffler.sample(names, len(names))
        for name in order:
            elapsed = time_sample(losses[name], logits, target, calls)
            if r >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def report(shape: tuple[int, ...], device: torch.device, medians: dict[str, float]) -> None:
    print(f"\n### {tuple(shape)} on {device.type}\n")
    print("| loss | median ms | baseline | ratio |")
    print("|---|---:|---|---:|")
    for name, seconds in medians.items():
        if name in BASELINES:
            print(f"| {name} (baseline) | {seconds * 1e3:.2f} | | 1.00 |")
            continue
        baseline = baseline_of(name)
        label = f"**{name}** (medseg)" if is_medseg(name) else name
        print(f"| {label} | {seconds * 1e3:.2f} | {baseline} | {seconds / medians[baseline]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per shape (default 30)")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="cuda is skipped when absent")
    args = parser.parse_args()
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, forward+backward, "
        f"{args.rounds} interleaved rounds"
    )
    for device in devices:
        for shape in SHAPES:
            report(shape, device, benchmark(shape, device, args.rounds))


if __name__ == "__main__":
    main()
