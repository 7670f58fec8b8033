"""The ``medseg`` command: one sub-command per job, each a thin wrapper over the library.

Task names, their options and their synthetic layouts come from the task records (:mod:`medseg.tasks`): a
registered task appears here with its flags, and a flag given to a task that does not take it is refused.

Exit status: 0 done; 1 the data could not be used (the message says which file and why); 2 a usage error, one
line naming the argument, as argparse reports its own (a value out of range, an output path that cannot be
written, a data root that is not a folder), checked before any data is read; 130 interrupted (Ctrl-C) or 143
stopped (SIGTERM), one line, with no partial output file. ``medseg infer`` returns 1 when any input failed.
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


def _probability_or_otsu(text: str) -> float | str:
    """An argparse type: a threshold in (0, 1), or ``otsu``."""
    if text == "otsu":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability or 'otsu', got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1) or 'otsu', got {text}")
    return value


def _inference_setup(args: argparse.Namespace):
    """The predictor and cases of ``medseg infer``; any problem with the arguments is a usage error."""
    from pathlib import Path

    import torch

    from medseg.bundle import check_checkpoint
    from medseg.files import OutputPathError, check_output_folder
    from medseg.inference import InferenceSettings, InputError, Predictor, find_cases
    from medseg.tasks import get_task

    if args.checkpoint and not args.network:
        raise _UsageError("argument --network: required with --checkpoint (a name of medseg.networks.get_network)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise _UsageError("argument --device: cuda asked, but PyTorch sees no CUDA device")
    try:
        output = check_output_folder(args.output)
    except OutputPathError as error:
        raise _UsageError(f"argument --output: {error}") from error
    checkpoint = Path(args.checkpoint) if args.checkpoint else Path(args.bundle) / "models" / "model.pt"
    try:
        check_checkpoint(checkpoint, args.bundle or ".")
        if args.bundle:
            settings = InferenceSettings.from_bundle(args.bundle, checkpoint)
        else:
            settings = InferenceSettings.from_checkpoint(
                checkpoint, task=args.task, network_name=args.network, image_size=args.image_size
            )
    except (SystemExit, ValueError) as error:
        raise _UsageError(f"argument {'--bundle' if args.bundle else '--checkpoint'}: {error}") from error
    if args.test_time_shift is not None:
        settings.shift = args.test_time_shift
    try:
        cases = find_cases(args.input, args.series_uid, volumetric=get_task(settings.task).volumetric)
    except InputError as error:
        raise _UsageError(f"argument --input: {error}") from error
    for case in cases:
        folder = case.path if case.path.is_dir() else case.path.parent
        if folder.resolve() == output.resolve():
            raise _UsageError(f"argument --output: {output} holds the input {case.path}; give another folder")
    predictor = Predictor(settings, checkpoint, device=args.device, amp=args.amp, batch_size=args.batch_size)
    return predictor, cases, output


def _infer(args: argparse.Namespace) -> int:
    from medseg.inference import InferenceOptions, run_inference

    predictor, cases, output = _inference_setup(args)
    options = InferenceOptions(
        postprocessing=predictor.settings.postprocessing(
            args.threshold, args.keep_largest, args.min_ratio, args.fill_holes, args.clear_border
        ),
        probabilities=args.probabilities,
        dicom_seg=args.dicom_seg,
        overlay=args.overlay,
        overwrite=args.overwrite,
    )
    summary = run_inference(predictor, cases, output, options)
    for record in summary["cases"]:
        detail = record["error"] if record["status"] != "ok" else ", ".join(record["outputs"].values())
        print(f"{record['status']:>7s}  {record['case']}: {detail}")
    counts = summary["counts"]
    print(
        f"{counts['ok']} segmented, {counts['failed']} failed, {counts['skipped']} skipped; {output / 'summary.json'}"
    )
    return 1 if counts["failed"] else 0


def _names(kind: str, registry: Any) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names of ``registry`` (unknown names are a usage error)."""

    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in registry]
        if unknown or not names:
            given = ", ".join(map(repr, unknown)) or "(none given)"
            raise argparse.ArgumentTypeError(f"unknown {kind} {given}; valid: {', '.join(sorted(registry))}")
        return names

    return parse


def _setting(text: str) -> tuple[str, Any]:
    """An argparse type: ``KEY=VALUE`` for a bundle override, the value read as JSON when it parses."""
    import json

    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _compare_losses(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from medseg.apps.compare import Comparison, run_comparison

    if args.baseline not in args.losses:
        raise _UsageError(f"argument --baseline: {args.baseline!r} is not among --losses {','.join(args.losses)}")
    try:
        folds = len(json.loads(Path(args.datalist).read_text()).get("folds") or [])
    except (OSError, json.JSONDecodeError) as error:
        raise _UsageError(f"argument --datalist: {args.datalist}: {error}") from error
    if folds < args.folds:
        raise _UsageError(f"argument --folds: {args.datalist} has {folds} fold(s), {args.folds} asked")
    if not (Path(args.bundle) / "configs" / "train.json").is_file():
        raise _UsageError(f"argument --bundle: {args.bundle} has no configs/train.json")
    overrides = dict(args.set or [])
    for key in ("image_size", "batch_size"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    comparison = Comparison(
        bundle=Path(args.bundle).resolve(),
        datalist=Path(args.datalist).resolve(),
        losses=args.losses,
        networks=args.networks or [],
        folds=args.folds,
        out=Path(args.out).resolve(),
        baseline=args.baseline,
        epochs=args.epochs,
        minutes=args.minutes,
        device=args.device,
        jobs=args.jobs,
        overrides=overrides,
    )
    records = run_comparison(comparison)
    print(f"wrote {comparison.out / 'results.csv'}, {comparison.out / 'report.md'} and the plots")
    return 1 if any(record["status"] != "ok" for record in records) else 0


def _demo(args: argparse.Namespace) -> int:
    from medseg.apps.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out_dir=args.out, bundle=args.bundle, epochs=args.epochs, seed=args.seed))
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

    demo = commands.add_parser(
        "demo", help="train and evaluate the chest X-ray bundle on synthetic radiographs (python -m monai.bundle run)"
    )
    demo.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    demo.add_argument("--bundle", type=_folder, help="the bundle folder (default: bundles/cxr_lung_unet here)")
    demo.add_argument("--epochs", type=_integer(1), default=20)
    demo.add_argument("--seed", type=seed, default=0)
    demo.set_defaults(func=_demo, command_parser=demo)
    _add_infer(commands)
    _add_compare_losses(commands)
    return parser


def _add_compare_losses(commands: argparse._SubParsersAction) -> None:
    from medseg.losses import LOSSES
    from medseg.networks import NETWORKS

    compare = commands.add_parser(
        "compare-losses",
        help="k-fold comparison of losses (and networks) through a bundle, with tables, paired t-tests and plots",
        description="Train and evaluate every (network, loss, fold) with the bundle's own configs, each run in its own "
        "folder; finished runs are skipped when the command runs again. Writes results.csv, report.md (the papers' "
        "tables, paired t-tests against the baseline) and PNG plots.",
    )
    compare.add_argument("--bundle", required=True, type=_folder, help="the bundle folder, e.g. bundles/cxr_lung_unet")
    compare.add_argument("--datalist", required=True, help="a medseg prepare datalist with its folds")
    compare.add_argument("--losses", required=True, type=_names("loss", LOSSES), help="comma-separated loss names")
    compare.add_argument("--networks", type=_names("network", NETWORKS), help="comma-separated network names "
                         "(default: the bundle's)")  # fmt: skip
    compare.add_argument("--folds", type=_integer(1), default=4, help="folds 0..k-1 (default 4)")
    budget = compare.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=_integer(1), help="epochs per run")
    budget.add_argument("--minutes", type=float, help="wall-clock minutes of training per run")
    compare.add_argument("--out", required=True, help="the comparison's folder")
    compare.add_argument("--baseline", default="bce", help="the loss the others are t-tested against (default bce)")
    compare.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    compare.add_argument("--jobs", type=_integer(1), default=1, help="runs at a time, each on one device")
    compare.add_argument("--image-size", type=_integer(1), help="the bundle's image_size for every run")
    compare.add_argument("--batch-size", type=_integer(1), help="the bundle's batch_size for every run")
    compare.add_argument("--set", action="append", type=_setting, metavar="KEY=VALUE", help="another bundle override")
    compare.set_defaults(func=_compare_losses, command_parser=compare)


def _add_infer(commands: argparse._SubParsersAction) -> None:
    infer = commands.add_parser(
        "infer",
        help="segment DICOM series, NIfTI/NRRD/MHA volumes, radiographs or photos with a trained bundle",
        description="Segment each input with a bundle's trained network (or a checkpoint) and its pre-processing; "
        "write <case>_seg.nii.gz on the input's grid (and, if asked, probabilities, DICOM SEG, an overlay PNG) and "
        "summary.json. A bad input is reported with its reason and the others go on. Exit status: 0 all segmented, "
        "1 any failed, 2 bad arguments.",
    )
    source = infer.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", type=_folder, help="a bundle folder with its trained models/model.pt")
    source.add_argument("--checkpoint", help="a state dict (with its settings.json beside it, or --task etc.)")
    infer.add_argument("--network", help="with --checkpoint: the network's registry name")
    infer.add_argument("--task", help="with --checkpoint and no settings.json: the task (luna16, ct, cxr, lfw, helen)")
    infer.add_argument("--image-size", type=_integer(1), help="with --checkpoint and no settings.json: the ROI size")
    infer.add_argument("--input", nargs="+", required=True, help="files, folders, DICOM series folders or globs")
    infer.add_argument("--output", required=True, help="the output folder (not an input folder)")
    infer.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    infer.add_argument("--threshold", type=_probability_or_otsu, default=0.5, help="0.5 (default) or otsu")
    infer.add_argument(
        "--keep-largest", type=_integer(0), help="keep the N largest connected components; 0 keeps all (default: "
        "the bundle's keep_largest, e.g. 2 for the chest X-ray bundle's lungs; else all)",
    )  # fmt: skip
    infer.add_argument(
        "--min-ratio", type=float, default=0.0, help="a kept component after the first must be this share of the "
        "largest (SegCaps: --keep-largest 2 --min-ratio 0.2)",
    )  # fmt: skip
    infer.add_argument(
        "--fill-holes", action=argparse.BooleanOptionalAction, help="fill the holes of the mask (default: the "
        "bundle's fill_holes; else not)",
    )  # fmt: skip
    infer.add_argument(
        "--clear-border", action="store_true", help="first remove what touches the in-plane image border (the air "
        "around the body in CT), slice by slice",
    )  # fmt: skip
    infer.add_argument(
        "--test-time-shift", type=_integer(0), metavar="PIXELS", help="average the outputs over copies of the image "
        "moved by this many pixels along each in-plane axis; 0: off (default: the bundle's test_time_shift, e.g. 4 "
        "for the chest X-ray bundle; else 0)",
    )  # fmt: skip
    infer.add_argument("--dicom-seg", action="store_true", help="also write a DICOM SEG for DICOM inputs")
    infer.add_argument("--overlay", action="store_true", help="also write a PNG of the mask's outline on the image")
    infer.add_argument("--probabilities", action="store_true", help="also write the probability map")
    infer.add_argument("--batch-size", type=_integer(1), default=4, help="windows or slices per forward pass")
    infer.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    infer.add_argument("--series-uid", help="in a folder of several DICOM series, the one to segment")
    infer.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip the case)")
    infer.set_defaults(func=_infer, command_parser=infer)


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

    # only Python's own handlers are replaced (a background job that ignores SIGINT goes on ignoring it), and only
    # in the main thread, the one place a handler can be set; SIGTERM (kill, a scheduler's stop) ends the run the
    # same way, so that no temporary file is left behind
    in_main_thread = threading.current_thread() is threading.main_thread()
    replace_int = in_main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous = signal.signal(signal.SIGINT, on_interrupt) if replace_int else None
    replace_term = in_main_thread and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    previous_term = signal.signal(signal.SIGTERM, on_interrupt) if replace_term else None
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
        return 128 + (interrupted[0] if interrupted else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return 2


if __name__ == "__main__":
    sys.exit(main())
