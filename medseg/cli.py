"""The ``medseg`` command: one sub-command per job, each a thin wrapper over the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _synth(args: argparse.Namespace) -> int:
    from medseg.data.synthetic import synthesize

    written = synthesize(args.task, args.out, n=args.n, seed=args.seed)
    print(f"wrote {len(written)} synthetic {args.task} case(s) under {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from medseg.apps.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out_dir=args.out, epochs=args.epochs, seed=args.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from medseg.data.synthetic import SYNTH_TASKS

    parser = argparse.ArgumentParser(prog="medseg", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="write a synthetic dataset in a real dataset's layout")
    synth.add_argument("--task", required=True, choices=sorted(SYNTH_TASKS))
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--n", type=int, default=8, help="number of cases (default 8)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_synth)

    demo = commands.add_parser("demo", help="train and validate a small U-Net on synthetic chest X-rays")
    demo.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
