"""``medseg demo``: the chest X-ray bundle trained and evaluated on synthetic radiographs (``make demo``), then a real
radiograph of ``examples/`` segmented with the shipped model ``cxr-lungs``."""

from __future__ import annotations

import argparse
import sys

from .arguments import SEED_RANGE, folder, integer

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medseg.apps.demo import DemoConfig, run_demo, segment_example
    from medseg.pretrained import ManifestError

    try:
        if args.example_only:
            segment_example(Path(args.out) / "example", args.examples)
        else:
            config = DemoConfig(out_dir=args.out, bundle=args.bundle, epochs=args.epochs, seed=args.seed)
            config.example, config.examples = args.example, args.examples
            run_demo(config)
    except ManifestError as error:
        print(f"medseg demo: error: {error}", file=sys.stderr)
        return 1
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="train and evaluate the chest X-ray bundle on synthetic radiographs (python -m monai.bundle run), then "
        "segment a real example radiograph with the shipped model cxr-lungs",
    )
    demo.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    demo.add_argument("--bundle", type=folder, help="the bundle folder (default: bundles/cxr_lung_unet here)")
    demo.add_argument("--epochs", type=integer(1), default=20)
    demo.add_argument("--seed", type=integer(*SEED_RANGE), default=0)
    demo.add_argument("--examples", type=folder, help="the example radiographs' folder (default: examples/ here)")
    step = demo.add_mutually_exclusive_group()
    step.add_argument("--no-example", dest="example", action="store_false", help="skip the real radiograph at the end")
    step.add_argument(
        "--example-only", action="store_true", help="only segment the real example radiograph with cxr-lungs (seconds)"
    )
    demo.set_defaults(func=run, command_parser=demo)
