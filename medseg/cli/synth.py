"""``medseg synth``: a synthetic dataset in a real dataset's on-disk layout."""

from __future__ import annotations

import argparse

from .arguments import SEED_RANGE, UsageError, integer

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from medseg.files import OutputPathError, check_output_folder
    from medseg.tasks import synthesize

    try:
        check_output_folder(args.out, empty=True)
    except OutputPathError as error:
        raise UsageError(f"argument --out: {error}") from error
    written = synthesize(args.task, args.out, n=args.n, seed=args.seed, layout=args.layout)
    print(f"wrote {len(written)} synthetic {args.task} case(s) under {args.out}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from medseg.tasks import TASKS, synthetic_names

    synth = commands.add_parser("synth", help="write a synthetic dataset in a real dataset's layout")
    synth.add_argument("--task", required=True, choices=synthetic_names())
    layouts = sorted({layout for task in TASKS.values() for layout in task.synthetic})
    synth.add_argument("--layout", choices=layouts, help="the task's synthetic layout (default: its first)")
    synth.add_argument("--out", required=True, help="output folder, new or empty")
    synth.add_argument("--n", type=integer(1), default=8, help="number of cases (default 8)")
    synth.add_argument("--seed", type=integer(*SEED_RANGE), default=0, help=f"from {SEED_RANGE[0]} to {SEED_RANGE[1]}")
    synth.set_defaults(func=run, command_parser=synth)
