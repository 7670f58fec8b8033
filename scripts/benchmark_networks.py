"""Forward+backward time and peak memory of every medseg network on one 1×1×512×512 and one 1×1×256×256 image.

Part 1 compares ``SegCapsR3`` (training mode, no reconstruction) with the straightforward reference port in
``tests/support/segcaps_port.py`` (materialised votes, plain tensor-op routing, autograd keeps everything):
the two are checked to give the same outputs and gradients, timed side by side in this one process
(interleaved, alternating which goes first, medians), and their peak memory is measured in a fresh
subprocess each (peak resident set size from the kernel's high-water mark ``VmHWM``, i.e. ``ru_maxrss`` of
that process image, and its increase over the resident size just before the forward pass). Part 2 measures every
registered network the same way, one fresh subprocess per network and size (first forward+backward for memory,
then the timed runs).
CUDA figures (``torch.cuda.max_memory_allocated``) are printed only when CUDA is available.

    python scripts/benchmark_networks.py                 # everything (several minutes on 2 CPU cores)
    python scripts/benchmark_networks.py --skip-others   # the SegCaps comparison only
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from medseg.networks import NETWORKS, count_parameters, get_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' helpers
from support.segcaps_port import ReferenceSegCapsR3


def build(name: str) -> torch.nn.Module:
    """The network under ``name`` for a one-channel image (the reference port: ``"reference"``)."""
    if name == "reference":
        return ReferenceSegCapsR3()
    return get_network(name, in_channels=1)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_backward(net: torch.nn.Module, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Seconds for one training-mode forward and backward pass (loss: the output's mean); returns the output too."""
    net.zero_grad(set_to_none=True)
    synchronize(x.device)
    start = time.perf_counter()
    out = net(x)
    out.float().mean().backward()
    synchronize(x.device)
    return time.perf_counter() - start, out.detach()


def memory_status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, from ``/proc/self/status``.

    ``VmHWM`` is the kernel's high-water mark of this process image; ``ru_maxrss`` would be the same number
    except that Linux carries the parent's peak over ``fork``/``exec`` into a child's ``ru_maxrss``.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: ru_maxrss


def probe(name: str, size: int, repeats: int, device: torch.device) -> dict:
    """Run in a fresh process: peak memory of the first forward+backward, then the median of ``repeats`` more.

    CPU: peak resident set size (``VmHWM``) and its increase over the resident size before the forward
    pass. CUDA: ``torch.cuda.max_memory_allocated`` and its increase over the memory allocated before.
    """
    torch.manual_seed(0)
    net = build(name).train().to(device)
    x = torch.rand(1, 1, size, size, device=device)
    gc.collect()
    before = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else memory_status_mb("VmRSS")
    forward_backward(net, x)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else memory_status_mb("VmHWM")
    times = [forward_backward(net, x)[0] for _ in range(repeats)]
    return {"peak_mb": peak, "increase_mb": peak - before, "seconds": statistics.median(times) if times else None}


def run_probe(name: str, size: int, repeats: int, device: torch.device) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--probe",
        name,
        str(size),
        device.type,
        "--repeats",
        str(repeats),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare_segcaps(size: int, repeats: int, device: torch.device) -> dict:
    """Interleaved timing of the reference port and SegCapsR3 on the same weights, with an output check."""
    torch.manual_seed(0)
    fast = get_network("segcaps_r3", in_channels=1, reconstruction=False).train().to(device)
    reference = ReferenceSegCapsR3().train().to(device)
    reference.load_state_dict(fast.state_dict())
    x = torch.rand(1, 1, size, size, device=device)
    _, out_reference = forward_backward(reference, x)  # warm-up, and the check
    grads_reference = {n: p.grad.clone() for n, p in reference.named_parameters()}
    _, out_fast = forward_backward(fast, x)
    grads_ok = all(torch.allclose(p.grad, grads_reference[n], rtol=1e-3, atol=1e-6) for n, p in fast.named_parameters())
    check = {
        "max_abs_diff": (out_fast - out_reference).abs().max().item(),
        "outputs_allclose": torch.allclose(out_fast, out_reference, rtol=1e-5, atol=1e-6),
        "grads_allclose": grads_ok,
    }
    del out_reference, out_fast, grads_reference
    times: dict[str, list[float]] = {"reference": [], "segcaps_r3": []}
    for round_ in range(repeats):
        order = [("reference", reference), ("segcaps_r3", fast)]
        for name, net in order if round_ % 2 == 0 else order[::-1]:
            times[name].append(forward_backward(net, x)[0])
    result = {"check": check, "seconds": {k: statistics.median(v) for k, v in times.items()}, "runs": times}
    return result


def print_segcaps(size: int, result: dict, memory: dict[str, dict], device: torch.device) -> None:
    seconds, check = result["seconds"], result["check"]
    print(f"\n1x1x{size}x{size}, {device.type}: reference port vs SegCapsR3 (training mode, no reconstruction)")
    print(
        f"  check: outputs allclose {check['outputs_allclose']} (max |diff| {check['max_abs_diff']:.2e}), "
        f"parameter gradients allclose {check['grads_allclose']}"
    )
    print(f"  {'':22s} {'reference':>10s} {'SegCapsR3':>10s} {'ratio':>8s}")
    ratio = seconds["reference"] / seconds["segcaps_r3"]
    print(f"  {'fwd+bwd median (s)':22s} {seconds['reference']:10.2f} {seconds['segcaps_r3']:10.2f} {ratio:7.2f}x")
    peak = "peak RSS (MB)" if device.type == "cpu" else "peak allocated (MB)"
    for key, label in (("peak_mb", peak), ("increase_mb", "fwd+bwd increase (MB)")):
        ref, fast = memory["reference"].get(key), memory["segcaps_r3"].get(key)
        if ref and fast:
            print(f"  {label:22s} {ref:10.0f} {fast:10.0f} {100 * fast / ref:7.0f}%")
    runs = "  ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(result["runs"]["reference"], result["runs"]["segcaps_r3"]))
    print(f"  runs reference/SegCapsR3 (s): {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per candidate for the SegCaps comparison")
    parser.add_argument("--other-repeats", type=int, default=3, help="timed runs per network in part 2")
    parser.add_argument("--networks", nargs="+", default=sorted(NETWORKS), help="registry names for part 2")
    parser.add_argument("--skip-others", action="store_true", help="only the SegCaps comparison")
    parser.add_argument("--probe", nargs=3, metavar=("NAME", "SIZE", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe[0], int(args.probe[1]), args.repeats, torch.device(args.probe[2]))))
        return

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print("\nPart 1: SegCapsR3 against the reference port (same weights), medians of interleaved runs")
    for device in devices:
        for size in args.sizes:
            result = compare_segcaps(size, args.repeats, device)
            gc.collect()
            memory = {name: run_probe(name, size, 0, device) for name in ("reference", "segcaps_r3")}
            print_segcaps(size, result, memory, device)
            sys.stdout.flush()
    if args.skip_others:
        return
    for device in devices:
        peak = "peak RSS (MB)" if device.type == "cpu" else "peak alloc (MB)"
        print(
            f"\nPart 2: every network, {device.type}, training mode, one fresh process per row "
            f"(median of {args.other_repeats} runs after the first)"
        )
        print(
            f"  {'network':16s} {'parameters':>12s} {'size':>5s} {'fwd+bwd (s)':>12s} {peak:>15s} "
            f"{'increase (MB)':>14s}"
        )
        for name in args.networks:
            parameters = count_parameters(lambda name=name: build(name))
            for size in args.sizes:
                row = run_probe(name, size, args.other_repeats, device)
                if "error" in row:
                    print(f"  {name:16s} {parameters:12,d} {size:5d}  failed: {row['error']}")
                else:
                    print(
                        f"  {name:16s} {parameters:12,d} {size:5d} {row['seconds']:12.2f} {row['peak_mb']:15.0f} "
                        f"{row['increase_mb']:14.0f}"
                    )
                sys.stdout.flush()


if __name__ == "__main__":
    main()
