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


def _prepare(args: argparse.Namespace) -> int:
    from medseg.data.layout import LayoutError, MissingFileError
    from medseg.data.prepare import format_report, prepare_datalist

    faces = args.task in ("lfw", "helen")
    misplaced = [
        flag
        for flag, given, allowed in (
            ("--include-hair/--no-hair", args.include_hair is not None, faces),
            ("--foreground", args.foreground is not None, args.task == "luna16"),
            ("--layout", args.layout != "auto", args.task == "cxr"),
            ("--mask-pattern", args.mask_pattern is not None, args.task in ("ct", "cxr")),
            ("--image-pattern", args.image_pattern != "*", args.task in ("ct", "cxr")),
            ("--image-dir", args.image_dir is not None, args.task in ("ct", "cxr")),
        )
        if given and not allowed
    ]
    if misplaced:
        print(f"medseg prepare: error: {', '.join(misplaced)} do(es) not apply to --task {args.task}", file=sys.stderr)
        return 2
    try:
        report = prepare_datalist(
            args.task,
            args.data_root,
            args.out,
            n_folds=args.folds,
            val_fraction=args.val_fraction,
            seed=args.seed,
            include_hair=True if args.include_hair is None else args.include_hair,
            foreground=tuple(args.foreground) if args.foreground else None,
            layout=args.layout,
            mask_pattern=args.mask_pattern,
            image_pattern=args.image_pattern,
            image_dir=args.image_dir,
        )
    except (LayoutError, MissingFileError, ValueError) as error:
        print(f"medseg prepare: error: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from medseg.data.cxr import CXR_LAYOUTS
    from medseg.data.prepare import TASKS
    from medseg.data.synthetic import SYNTH_TASKS

    parser = argparse.ArgumentParser(prog="medseg", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="write a synthetic dataset in a real dataset's layout")
    synth.add_argument("--task", required=True, choices=sorted(SYNTH_TASKS))
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
    prepare.add_argument("--task", required=True, choices=TASKS)
    prepare.add_argument("--data-root", required=True, help="the dataset folder, in its published layout")
    prepare.add_argument("--out", required=True, help="the datalist JSON to write")
    prepare.add_argument(
        "--folds", type=int, default=4, help="k of the k-fold splits grouped by patient (default 4; 0: none)"
    )
    prepare.add_argument(
        "--val-fraction", type=float, default=0.1, help="validation share of each training fold (default 0.1)"
    )
    prepare.add_argument("--seed", type=int, default=0, help="seed of the folds and the validation draw (default 0)")
    hair = prepare.add_mutually_exclusive_group()
    hair.add_argument(
        "--include-hair",
        dest="include_hair",
        action="store_true",
        default=None,
        help="faces: face = skin + hair (default)",
    )
    hair.add_argument("--no-hair", dest="include_hair", action="store_false", help="faces: hair counts as background")
    prepare.add_argument(
        "--foreground", type=int, nargs="+", help="luna16: label values that are foreground (default 3 4, the lungs)"
    )
    prepare.add_argument(
        "--layout", default="auto", choices=("auto", *CXR_LAYOUTS), help="cxr: dataset layout (default: detected)"
    )
    prepare.add_argument(
        "--mask-pattern",
        help="ct, cxr: mask path relative to the data root, e.g. '{stem}@.png', 'masks/{stem}_mask.png', 'wholeLung-{id}.nrrd'",
    )
    prepare.add_argument(
        "--image-pattern",
        default="*",
        help="ct, cxr: what image names look like, with {fields} for the mask pattern, e.g. 'ct-{id}.nrrd' (default *)",
    )
    prepare.add_argument(
        "--image-dir", help="ct, cxr: the images' folder relative to the data root (default: the root)"
    )
    prepare.set_defaults(func=_prepare)

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
