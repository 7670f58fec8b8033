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

The cost of the input checks (:mod:`medseg.losses.checks`, forward hooks on every loss from ``get_loss``) is
measured in the same rounds: each medseg loss, and MONAI's Dice loss with its hooks, is also timed through its
``forward`` method, which skips the hooks (``, inputs unchecked``), and a second table gives the ratio. The timed
calls are the steady state: each loss object's first calls (before the rounds) run the exact check;
``--exact-checks`` runs it on every call instead, to measure what it would cost.

    python scripts/benchmark_losses.py [--rounds 30] [--device cpu|cuda|all] [--threads N] [--clock wall|process]

On a machine shared with other jobs, ``--threads 1 --clock process`` times the CPU this process uses, which the
other jobs' load does not inflate (with several threads, waiting threads spin and would count).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable

import torch
from monai.losses import DiceLoss

from medseg.losses import EXACT_CHECK_CALLS, LOSSES, compute_pos_weight, get_loss

SHAPES = [(8, 1, 256, 256), (2, 1, 96, 96, 96)]
REGION_BASELINE = "monai DiceLoss"
WEIGHTED_BCE_BASELINE = "torch BCEWithLogitsLoss(pos_weight)"
BCE_BASELINE = "torch BCEWithLogitsLoss()"
BASELINES = (REGION_BASELINE, WEIGHTED_BCE_BASELINE, BCE_BASELINE)
NAIVE_IOU = "iou, element-wise union (reference)"
UNCHECKED = ", inputs unchecked"


def naive_soft_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft IoU with the union computed element-wise, the way the formula reads."""
    p = torch.sigmoid(logits)
    axes = list(range(2, p.dim()))
    intersection = (p * target).sum(axes)
    union = (p + target - p * target).sum(axes)
    return (1 - (intersection + 1e-5) / (union + 1e-5)).mean()


def baseline_of(name: str) -> str:
    if name == NAIVE_IOU:
        return REGION_BASELINE
    spec = LOSSES[name]
    if spec.kind == "region":
        return REGION_BASELINE
    return WEIGHTED_BCE_BASELINE if spec.needs_pos_weight else BCE_BASELINE


def is_medseg(name: str) -> bool:
    return name in LOSSES and LOSSES[name].factory.__module__.startswith("medseg.")


def candidates(pos_weight: float, exact_checks: bool = False) -> dict[str, Callable]:
    losses: dict[str, Callable] = {
        REGION_BASELINE: DiceLoss(sigmoid=True),
        WEIGHTED_BCE_BASELINE: torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight)),
        BCE_BASELINE: torch.nn.BCEWithLogitsLoss(),
    }
    for name in sorted(LOSSES):
        weight = {"pos_weight": pos_weight} if LOSSES[name].needs_pos_weight else {}
        losses[name] = get_loss(name, network_output="logits", **weight)
        if exact_checks:
            losses[name].input_checks.exact_left = math.inf
        if is_medseg(name) or name == "dice":
            losses[name + UNCHECKED] = losses[name].forward  # forward itself skips the check hooks
    losses[NAIVE_IOU] = naive_soft_iou
    return losses


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: The clock of the samples: wall time, or the CPU time of this process (``--clock process``).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "process": time.process_time}


def time_sample(
    loss: Callable, logits: torch.Tensor, target: torch.Tensor, calls: int, clock: Callable[[], float]
) -> float:
    """Mean seconds of one forward+backward over ``calls`` consecutive calls."""
    synchronize(logits.device)
    start = clock()
    for _ in range(calls):
        logits.grad = None
        loss(logits, target).backward()
    synchronize(logits.device)
    return (clock() - start) / calls


def benchmark(
    shape: tuple[int, ...],
    device: torch.device,
    rounds: int,
    clock: Callable[[], float],
    exact_checks: bool = False,
    warmup: int = 3,
) -> dict[str, float]:
    gen = torch.Generator().manual_seed(0)
    target = (torch.rand(shape, generator=gen) < 0.2).float()
    logits = (torch.randn(shape, generator=gen) + 2 * target - 1).to(device).requires_grad_()
    target = target.to(device)
    pos_weight = compute_pos_weight([target.cpu()])
    losses = {
        name: loss.to(device) if isinstance(loss, torch.nn.Module) else loss
        for name, loss in candidates(pos_weight, exact_checks).items()
    }
    names = list(losses)
    for loss in losses.values():  # past each loss object's first calls, which run the exact input check
        for _ in range(EXACT_CHECK_CALLS):
            loss(logits, target)
    # each sample repeats a call for about 50 ms, so that timer resolution and scheduler noise average out
    calls = max(1, round(0.05 / time_sample(losses[REGION_BASELINE], logits, target, 3, clock)))
    times: dict[str, list[float]] = {name: [] for name in names}
    shuffler = random.Random(0)
    for r in range(warmup + rounds):
        order = shuffler.sample(names, len(names))
        for name in order:
            elapsed = time_sample(losses[name], logits, target, calls, clock)
            if r >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def report(shape: tuple[int, ...], device: torch.device, medians: dict[str, float]) -> None:
    print(f"\n### {tuple(shape)} on {device.type}\n")
    print("| loss | median ms | baseline | ratio |")
    print("|---|---:|---|---:|")
    for name, seconds in medians.items():
        if name.endswith(UNCHECKED):
            continue
        if name in BASELINES:
            print(f"| {name} (baseline) | {seconds * 1e3:.2f} | | 1.00 |")
            continue
        baseline = baseline_of(name)
        label = f"**{name}** (medseg)" if is_medseg(name) else name
        print(f"| {label} | {seconds * 1e3:.2f} | {baseline} | {seconds / medians[baseline]:.2f} |")
    print("\n| loss | checked ms | unchecked ms | checked / unchecked |")
    print("|---|---:|---:|---:|")
    for name, seconds in medians.items():
        if name.endswith(UNCHECKED):
            checked = name.removesuffix(UNCHECKED)
            ratio = medians[checked] / seconds
            print(f"| {checked} | {medians[checked] * 1e3:.2f} | {seconds * 1e3:.2f} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per shape (default 30)")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="cuda is skipped when absent")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall (default) or process CPU time")
    parser.add_argument(
        "--exact-checks", action="store_true", help="the exact input check on every call (its cost, for comparison)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, forward+backward, "
        f"{args.rounds} interleaved rounds, {args.clock} clock"
        + (", exact input check on every call" if args.exact_checks else "")
    )
    for device in devices:
        for shape in SHAPES:
            report(shape, device, benchmark(shape, device, args.rounds, CLOCKS[args.clock], args.exact_checks))


if __name__ == "__main__":
    main()
