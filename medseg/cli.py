"""The ``medseg`` command: one sub-command per job, each a thin wrapper over the library.

Task names, their options and their synthetic layouts come from the task records (:mod:`medseg.tasks`): a
registered task appears here with its flags, and a flag given to a task that does not take it is refused.

Exit status: 0 done; 1 the data could not be used (the message says which file and why); 2 a usage error, one
line naming the argument, as argparse reports its own (a value out of range, an output path that cannot be
written, a data root that is not a folder), checked before any data is read; 130 interrupted (Ctrl-C), one line.
The library (PyTorch, MONAI) is imported inside :func:`main`, so that Ctrl-C during the imports is an
interruption like any other.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medseg.tasks import TaskOption

__all__ = ["build_parser", "main"]

#: Seeds scikit-learn and NumPy's legacy generators accept.
_SEED_RANGE = (0, 2**32 - 1)


def _integer(low: int, high: int | None = None, also: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (or the single value ``also``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value != also and (value < low or (high is not None and value > high)):
            wanted = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(
                f"must be {wanted}" + (f" (or {also})" if also is not None else "") + f", got {value}"
            )
        return value

    return parse


def _fraction(text: str) -> float:
    """An argparse type: a share in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _folder(text: str) -> str:
    """An argparse type: an existing folder (a symbolic link loop or a file is named as such)."""
    try:
        os.stat(text)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{text}: {error.strerror}") from None
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return text


class _UsageError(Exception):
    """A usage error found after parsing; the message starts with the argument it is about."""


def _synth(args: argparse.Namespace) -> int:
    from medseg.files import OutputPathError, check_output_folder
    from medseg.tasks import synthesize

    try:
        check_output_folder(args.out, empty=True)
    except OutputPathError as error:
        raise _UsageError(f"argument --out: {error}") from error
    written = synthesize(args.task, args.out, n=args.n, seed=args.seed, layout=args.layout)
    print(f"wrote {len(written)} synthetic {args.task} case(s) under {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from medseg.apps.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out_dir=args.out, epochs=args.epochs, seed=args.seed))
    return 0


def _task_options(args: argparse.Namespace, stages: Sequence[str]) -> dict[str, Any]:
    """The task options given on the command line; a flag the task does not take is a usage error."""
    from medseg.tasks import TASKS

    task = TASKS[args.task]
    accepted = {option.name for option in task.options if option.stage in stages}
    given = {name: value for name, value in vars(args).items() if name in _option_names(stages) and value is not None}
    misplaced = [_flags(_declared(name)) for name in given if name not in accepted]
    if misplaced:
        raise _UsageError(f"{', '.join(misplaced)} do(es) not apply to --task {args.task}")
    return {name: tuple(value) if isinstance(value, list) else value for name, value in given.items()}


def _prepare(args: argparse.Namespace) -> int:
    from medseg.apps.prepare import format_report, prepare_datalist
    from medseg.data import LayoutError, MissingFileError
    from medseg.files import OutputPathError

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
    except OutputPathError as error:  # checked before the data is read
        raise _UsageError(f"argument --out: {error}") from error
    except (LayoutError, MissingFileError, ValueError) as error:
        print(f"medseg prepare: error: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0


def _declared(name: str) -> TaskOption:
    """The first declaration of a task option called ``name`` (tasks that share an option share its flag)."""
    from medseg.tasks import TASKS

    return next(option for task in TASKS.values() for option in task.options if option.name == name)


def _option_names(stages: Sequence[str]) -> list[str]:
    from medseg.tasks import TASKS

    return list(dict.fromkeys(o.name for task in TASKS.values() for o in task.options if o.stage in stages))


def _flags(option: TaskOption) -> str:
    return option.flag + (f"/{option.negative_flag}" if option.negative_flag else "")


def _users(name: str) -> str:
    from medseg.tasks import TASKS

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
    from medseg.tasks import TASKS, synthetic_names

    seed = _integer(*_SEED_RANGE)
    parser = argparse.ArgumentParser(prog="medseg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="write a synthetic dataset in a real dataset's layout")
    synth.add_argument("--task", required=True, choices=synthetic_names())
    layouts = sorted({layout for task in TASKS.values() for layout in task.synthetic})
    synth.add_argument("--layout", choices=layouts, help="the task's synthetic layout (default: its first)")
    synth.add_argument("--out", required=True, help="output folder, new or empty")
    synth.add_argument("--n", type=_integer(1), default=8, help="number of cases (default 8)")
    synth.add_argument("--seed", type=seed, default=0, help=f"from {_SEED_RANGE[0]} to {_SEED_RANGE[1]} (default 0)")
    synth.set_defaults(func=_synth, command_parser=synth)

    prepare = commands.add_parser(
        "prepare",
        help="validate a dataset's image/mask pairs, print a summary and write a MONAI datalist with k-fold splits",
        description="Find the image/mask pairs of a dataset in its published layout, check that each is readable, "
        "of one size and has a non-empty mask, print cases, slices, foreground fraction and the negative/positive "
        "pixel ratio, assign grouped k-fold splits and write a MONAI Decathlon-style datalist JSON (atomically). "
        "Bad pairs are listed with the reason; the others are still written.",
    )
    prepare.add_argument("--task", required=True, choices=list(TASKS))
    prepare.add_argument("--data-root", required=True, type=_folder, help="the dataset folder, in its published layout")
    prepare.add_argument("--out", required=True, help="the datalist JSON to write")
    prepare.add_argument(
        "--folds", type=_integer(2, also=0), default=4, help="k of the grouped k-fold splits (default 4; 0: none)"
    )
    prepare.add_argument(
        "--val-fraction", type=_fraction, default=0.1, help="validation share of each training fold, in [0, 1)"
    )
    prepare.add_argument("--seed", type=seed, default=0, help="seed of the folds and the validation draw (default 0)")
    _add_task_options(prepare, ("pairs", "label"))
    prepare.set_defaults(func=_prepare, command_parser=prepare)

    demo = commands.add_parser("demo", help="train and validate a small U-Net on synthetic chest X-rays")
    demo.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    demo.add_argument("--epochs", type=_integer(1), default=20)
    demo.add_argument("--seed", type=seed, default=0)
    demo.set_defaults(func=_demo, command_parser=demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``medseg`` command; returns the exit status (see the module docstring).

    Ctrl-C prints one line and returns 130, wherever it lands: Python raises ``KeyboardInterrupt``, but an import
    of a compiled extension interrupted half-way fails with another error (NumPy: "cannot load module more than
    once per process"), so the interruption is recorded by the SIGINT handler and any error after it counts as it.
    """
    interrupted: list[int] = []

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.append(signum)
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    # only Python's own handler is replaced (a background job that ignores SIGINT goes on ignoring it), and only
    # in the main thread, the one place a handler can be set
    replace = threading.current_thread() is threading.main_thread()
    replace = replace and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous = signal.signal(signal.SIGINT, on_interrupt) if replace else None
    command = "medseg"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"medseg {args.command}"
        try:
            return args.func(args)
        except _UsageError as error:
            args.command_parser.error(str(error))  # exits 2 with its usage line, as argparse does
    except (KeyboardInterrupt, Exception) as error:
        if not (interrupted or isinstance(error, KeyboardInterrupt)):
            raise
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 2


if __name__ == "__main__":
    sys.exit(main())
