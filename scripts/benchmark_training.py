"""Training throughput of a bundle's MONAI trainer against a bare PyTorch loop, side by side in one run.

The bundle's ``train#trainer`` (``SupervisedTrainer`` with all its handlers: training report, time budget,
last-state checkpoint, statistics, TensorBoard) trains on its own ``train#dataloader``; after each of its epochs,
a bare loop (``for batch in loader: forward, loss, backward, step``) trains a copy of the same network with the
same loss, optimizer settings, data loader and batch for one epoch. Validation is left out of both (it is not
training throughput). Epochs alternate, the first of each is a warm-up, and the table reports the median images
per second of each and their ratio (target: the trainer at >= 0.95 of the bare loop). It also reports the share
of the bare loop's time spent waiting for data, which shows whether data loading starves the network.

    python scripts/benchmark_training.py [--bundle cxr_lung_unet] [--epochs 6] [--cases 40] [--spatial-size 256 256]
                                         [--device cpu|cuda] [--amp] [--num-workers N]

The data are synthetic (``medseg synth``), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from ignite.engine import Events

from medseg.bundle import read_config
from medseg.tasks import get_task

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"
TASK_OF = {"cxr_lung_unet": "cxr", "lfw_face_fcn": "lfw", "luna16_segcaps": "luna16"}


def synchronize(device: torch.device) -> None:
    """Wait for the queued CUDA kernels, so that a clock read after it includes them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_epoch(network, loss_function, optimizer, loader, prepare_batch, device, scaler) -> tuple[float, float, int]:
    """One epoch of a plain PyTorch loop, with ``torch.autocast`` and ``scaler`` when it is given (AMP);
    returns (seconds, seconds waiting for data, images)."""
    network.train()
    images, waiting = 0, 0.0
    start = time.perf_counter()
    ready = time.perf_counter()
    for batch in loader:
        waiting += time.perf_counter() - ready
        inputs, targets, args, kwargs = _unpack(prepare_batch(batch, device))
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=scaler is not None):
            loss = loss_function(network(inputs, *args, **kwargs), targets)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        images += inputs.shape[0]
        ready = time.perf_counter()
    synchronize(device)
    return time.perf_counter() - start, waiting, images


def _unpack(prepared):
    inputs, targets = prepared[0], prepared[1]
    args = prepared[2] if len(prepared) > 2 else ()
    kwargs = prepared[3] if len(prepared) > 3 else {}
    return inputs, targets, args, kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="cxr_lung_unet", choices=sorted(TASK_OF))
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each, the first a warm-up (default 6)")
    parser.add_argument("--cases", type=int, default=40, help="synthetic cases (default 40)")
    parser.add_argument("--spatial-size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: the bundle's (CUDA when there is one)")
    parser.add_argument("--amp", action="store_true", help="mixed precision in both loops (CUDA)")
    parser.add_argument("--num-workers", type=int, help="data loader workers (default: the bundle's)")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        data, out = Path(folder) / "data", Path(folder) / "out"
        get_task(TASK_OF[args.bundle]).synthesize(data, n=args.cases, seed=0)
        config = read_config(
            BUNDLES / args.bundle,
            "train",
            **{
                "dataset_dir": str(data),
                "output_dir": str(out),
                "epochs": args.epochs,
                "spatial_size": args.spatial_size,
                "batch_size": args.batch_size,
                "val_interval": 10**6,  # training throughput only
                "amp": args.amp,
                **({"device": args.device} if args.device else {}),
                **({"num_workers": args.num_workers} if args.num_workers is not None else {}),
            },
        )
        trainer = config.get_parsed_content("train#trainer")
        network = config.get_parsed_content("network")
        bare_network = copy.deepcopy(network)
        optimizer = config.get_parsed_content("optimizer")
        bare_optimizer = type(optimizer)(bare_network.parameters(), **optimizer.defaults)
        loader = config.get_parsed_content("train#dataloader")
        device = config.get_parsed_content("torch_device")
        scaler = torch.amp.GradScaler(device.type) if trainer.amp else None
        times: dict[str, list[float]] = {"trainer": [], "bare loop": []}
        waits: list[float] = []
        started = [0.0]

        def epoch_started(engine) -> None:
            synchronize(device)
            started[0] = time.perf_counter()

        def epoch_completed(engine) -> None:
            synchronize(device)
            seconds = time.perf_counter() - started[0]
            times["trainer"].append(len(loader.dataset) / seconds)
            bare, waiting, images = bare_epoch(
                bare_network, trainer.loss_function, bare_optimizer, loader, trainer.prepare_batch, device, scaler
            )
            times["bare loop"].append(images / bare)
            waits.append(waiting / bare)

        threads = f"{torch.get_num_threads()} CPU threads"
        where = torch.cuda.get_device_name(device) if device.type == "cuda" else threads
        trainer.add_event_handler(Events.EPOCH_STARTED, epoch_started)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, epoch_completed)
        print(
            f"{args.bundle}: {len(loader.dataset)} training images of {args.spatial_size[0]}x{args.spatial_size[1]}, "
            f"batch {args.batch_size}, {type(network).__name__}, "
            f"{where}{', AMP' if trainer.amp else ''}, {loader.num_workers} loader workers, "
            f"{args.epochs} epochs each (first one a warm-up)"
        )
        trainer.run()
    rates = {name: statistics.median(values[1:]) for name, values in times.items()}
    print("\n| loop | median images/s | ratio to the bare loop |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.2f} | {rate / rates['bare loop']:.3f} |")
    print(
        f"\nbare loop: {100 * statistics.median(waits[1:]):.1f} % of its time waiting for data (augmentation included)"
    )


if __name__ == "__main__":
    main()
