"""The ``medseg`` command: one sub-command per job, each a thin wrapper over the library.

Task names, their options and their synthetic layouts come from the task records (:mod:`medseg.tasks`): a
registered task appears here with its flags, and a flag given to a task that does not take it is refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from medseg.tasks import TASKS, TaskOption, synthesize, synthetic_names

__all__ = ["build_parser", "main"]


def _synth(args: argparse.Namespace) -> int:
    written = synthesize(args.task, args.out, n=args.n, seed=args.seed, layout=args.layout)
    print(f"wrote {len(written)} synthetic {args.task} case(s) under {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from medseg.apps.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out_dir=args.out, bundle=args.bundle, epochs=args.epochs, seed=args.seed))
    return 0


def _task_options(args: argparse.Namespace, stages: Sequence[str]) -> dict[str, Any]:
    """The task options given on the command line; a flag the task does not take is a usage error."""
    task = TASKS[args.task]
    accepted = {option.name for option in task.options if option.stage in stages}
    given = {name: value for name, value in vars(args).items() if name in _option_names(stages) and value is not None}
    misplaced = [_flags(_declared(name)) for name in given if name not in accepted]
    if misplaced:
        raise _UsageError(f"{', '.join(misplaced)} do(es) not apply to --task {args.task}")
    return {name: tuple(value) if isinstance(value, list) else value for name, value in given.items()}


class _UsageError(Exception):
    """A valid flag given in a context where it does not apply."""


def _prepare(args: argparse.Namespace) -> int:
    from medseg.apps.prepare import format_report, prepare_datalist
    from medseg.data import LayoutError, MissingFileError

    options = _task_options(args, ("pairs", "label"))
    try:
        report = prepare_datalist(
            args.task,
            args.data_root,
            args.out,
            n_folds=args.folds,
            val_fraction=args.val_fraction,
            seed=args.seed,
            **options,
        )
    except (LayoutError, MissingFileError, ValueError) as error:
        print(f"medseg prepare: error: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0


def _declared(name: str) -> TaskOption:
    """The first declaration of a task option called ``name`` (tasks that share an option share its flag)."""
    return next(option for task in TASKS.values() for option in task.options if option.name == name)


def _option_names(stages: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(o.name for task in TASKS.values() for o in task.options if o.stage in stages))


def _flags(option: TaskOption) -> str:
    return option.flag + (f"/{option.negative_flag}" if option.negative_flag else "")


def _users(name: str) -> str:
    return ", ".join(task.name for task in TASKS.values() if any(o.name == name for o in task.options))


def _add_task_options(parser: argparse.ArgumentParser, stages: Sequence[str]) -> None:
    """One flag per task option of ``stages`` (default ``None``: "not given"), its help naming the tasks."""
    for name in _option_names(stages):
        option = _declared(name)
        help_text = f"{_users(name)}: {option.help}"
        if option.type is None:  # a boolean: its flag sets True, the negative flag (if any) False
            group = parser.add_mutually_exclusive_group()
            group.add_argument(option.flag, dest=name, action="store_true", default=None, help=help_text)
            if option.negative_flag:
                group.add_argument(
                    option.negative_flag, dest=name, action="store_false", help=f"{_users(name)}: not so"
                )
            continue
        kwargs = {"choices": option.choices} if option.choices else {}
        parser.add_argument(option.flag, dest=name, type=option.type, nargs=option.nargs, help=help_text, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medseg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="write a synthetic dataset in a real dataset's layout")
    synth.add_argument("--task", required=True, choices=synthetic_names())
    layouts = sorted({layout for task in TASKS.values() for layout in task.synthetic})
    synth.add_argument("--layout", choices=layouts, help="the task's synthetic layout (default: its first)")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--n", type=int, default=8, help="number of cases (default 8)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_synth)

    prepare = commands.add_parser(
        "prepare",
        help="validate a dataset's image/mask pairs, print a summary and write a MONAI datalist with k-fold splits",
        description="Find the image/mask pairs of a dataset in its published layout, check that each is readable, "
        "of one size and has a non-empty mask, print cases, slices, foreground fraction and the negative/positive "
        "pixel ratio, assign grouped k-fold splits and write a MONAI Decathlon-style datalist JSON (atomically). "
        "Bad pairs are listed with the reason; the others are still written.",
    )
    prepare.add_argument("--task", required=True, choices=list(TASKS))
    prepare.add_argument("--data-root", required=True, help="the dataset folder, in its published layout")
    prepare.add_argument("--out", required=True, help="the datalist JSON to write")
    prepare.add_argument("--folds", type=int, default=4, help="k of the grouped k-fold splits (default 4; 0: none)")
    prepare.add_argument("--val-fraction", type=float, default=0.1, help="validation share of each training fold")
    prepare.add_argument("--seed", type=int, default=0, help="seed of the folds and the validation draw (default 0)")
    _add_task_options(prepare, ("pairs", "label"))
    prepare.set_defaults(func=_prepare)

    demo = commands.add_parser(
        "demo", help="train and evaluate the chest X-ray bundle on synthetic radiographs (python -m monai.bundle run)"
    )
    demo.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    demo.add_argument("--bundle", help="the bundle folder (default: bundles/cxr_lung_unet of this checkout)")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except _UsageError as error:
        parser.error(str(error))  # exits 2 with the usage line, as argparse does for its own errors
    return 2


if __name__ == "__main__":
    sys.exit(main())
