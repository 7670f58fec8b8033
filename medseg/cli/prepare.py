"""``medseg prepare``: a dataset folder -> a validated MONAI datalist with grouped k-fold splits
(:func:`medseg.tasks.prepare_datalist`)."""

from __future__ import annotations

import argparse
import sys

from .arguments import SEED_RANGE, UsageError, add_task_options, folder, fraction, integer, task_options

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from medseg.data import LayoutError, MissingFileError
    from medseg.files import OutputPathError
    from medseg.tasks import check_sources, format_report, prepare_datalist

    options = task_options(args, ("pairs", "label"))
    try:
        check_sources(args.data_root, args.test_source)
    except ValueError as error:
        flag = "--test-source" if args.test_source and "named" in str(error) else "--data-root"
        raise UsageError(f"argument {flag}: {error}") from error
    roots = args.data_root[0] if len(args.data_root) == 1 else args.data_root
    try:
        report = prepare_datalist(
            args.task, roots, args.out, n_folds=args.folds, val_fraction=args.val_fraction, seed=args.seed,
            test_source=args.test_source, **options,
        )  # fmt: skip
    except OutputPathError as error:  # checked before the data is read
        raise UsageError(f"argument --out: {error}") from error
    except (LayoutError, MissingFileError, ValueError) as error:
        print(f"medseg prepare: error: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from medseg.tasks import TASKS

    prepare = commands.add_parser(
        "prepare",
        help="validate a dataset's image/mask pairs, print a summary and write a MONAI datalist with k-fold splits",
        description="Find the image/mask pairs of a dataset in its published layout, check that each is readable, "
        "of one size and has a non-empty mask, print cases, slices, foreground fraction and the negative/positive "
        "pixel ratio, assign grouped k-fold splits and write a MONAI Decathlon-style datalist JSON (atomically). "
        "Bad pairs are listed with the reason; the others are still written.",
    )
    prepare.add_argument("--task", required=True, choices=list(TASKS))
    prepare.add_argument(
        "--data-root", required=True, type=folder, nargs="+", action="extend", metavar="DIR",
        help="the dataset folder, in its published layout; several (two hospitals, also as --data-root A "
        "--data-root B): each case records its source, the folder's name",
    )  # fmt: skip
    prepare.add_argument(
        "--test-source", metavar="NAME", help="one fold that tests on this source (a data root's folder name) and "
        "trains on the others, instead of --folds",
    )  # fmt: skip
    prepare.add_argument("--out", required=True, help="the datalist JSON to write")
    prepare.add_argument(
        "--folds",
        type=integer(0),
        default=4,
        help="k of the grouped k-fold splits (default 4; 1: one fold that "
        "trains on every case but the validation share, with no test subset; 0: none)",
    )
    prepare.add_argument(
        "--val-fraction", type=fraction, default=0.1, help="validation share of each training fold, in [0, 1)"
    )
    prepare.add_argument(
        "--seed", type=integer(*SEED_RANGE), default=0, help="seed of the folds and the validation draw (default 0)"
    )
    add_task_options(prepare, ("pairs", "label"))
    prepare.set_defaults(func=run, command_parser=prepare)
