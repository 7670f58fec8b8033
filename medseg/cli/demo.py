"""``medseg demo``: the chest X-ray bundle trained and evaluated on synthetic radiographs (``make demo``)."""

from __future__ import annotations

import argparse

from .arguments import SEED_RANGE, folder, integer

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from medseg.apps.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out_dir=args.out, bundle=args.bundle, epochs=args.epochs, seed=args.seed))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="train and evaluate the chest X-ray bundle on synthetic radiographs (python -m monai.bundle run)"
    )
    demo.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    demo.add_argument("--bundle", type=folder, help="the bundle folder (default: bundles/cxr_lung_unet here)")
    demo.add_argument("--epochs", type=integer(1), default=20)
    demo.add_argument("--seed", type=integer(*SEED_RANGE), default=0)
    demo.set_defaults(func=run, command_parser=demo)
