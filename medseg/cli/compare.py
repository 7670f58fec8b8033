"""``medseg compare-losses``: the k-fold comparison of losses (and networks) through a bundle
(:mod:`medseg.apps.compare`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from .arguments import GivenOnce, UsageError, folder, integer, names, non_negative, positive, seeds, setting

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from medseg.apps.compare import Comparison, RunMismatchError, datalist_problems, run_comparison

    if args.backend == "ray":
        _check_ray(args)
    elif args.address is not None:
        raise UsageError("argument --address: only with --backend ray")
    if args.baseline not in args.losses:
        raise UsageError(f"argument --baseline: {args.baseline!r} is not among --losses {','.join(args.losses)}")
    try:
        folds = len(json.loads(Path(args.datalist).read_text()).get("folds") or [])
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"argument --datalist: {args.datalist}: {error}") from error
    if folds < args.folds:
        raise UsageError(f"argument --folds: {args.datalist} has {folds} fold(s), {args.folds} asked")
    from medseg.files import OutputLockedError, OutputPathError, check_output_folder

    try:
        check_output_folder(args.out)
    except OutputPathError as error:
        raise UsageError(f"argument --out: {error}") from error
    if not (Path(args.bundle) / "configs" / "train.json").is_file():
        raise UsageError(f"argument --bundle: {args.bundle} is not a bundle (no configs/train.json)")
    if problems := datalist_problems(Path(args.datalist), args.folds, Path(args.bundle).resolve()):
        for problem in problems:  # before any run: nothing trained on a datalist some run cannot read
            print(f"medseg compare-losses: error: {problem}", file=sys.stderr)
        return 1
    overrides = dict(args.set or [])
    for key in ("spatial_size", "batch_size"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    comparison = Comparison(
        bundle=Path(args.bundle).resolve(),
        datalist=Path(args.datalist).resolve(),
        losses=args.losses,
        networks=args.networks or [],
        folds=args.folds,
        seeds=args.seeds,
        out=Path(args.out).resolve(),
        baseline=args.baseline,
        epochs=args.epochs,
        minutes=args.minutes,
        device=args.device,
        jobs=args.jobs,
        overrides=overrides,
        backend=args.backend,
        address=args.address,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        label=args.label,
    )
    try:
        records = run_comparison(comparison)
    except (RunMismatchError, OutputLockedError) as error:
        raise UsageError(f"argument --out: {error}") from error
    print(f"wrote {comparison.out / 'results.csv'}, statistics.csv, report.md and the plots")
    return 1 if any(record["status"] != "ok" for record in records) else 0


def _check_ray(args: argparse.Namespace) -> None:
    if importlib.util.find_spec("ray") is None:  # not imported here: the backend sets Ray up before it is
        raise UsageError("argument --backend: ray is not installed (pip install 'medseg[ray]')")
    if args.gpus_per_run > 0 and args.device != "cuda":
        raise UsageError("argument --gpus-per-run: GPUs for each run need --device cuda")
    if args.address is not None:
        from medseg.apps.compare.cluster import ClusterAddressError, check_address

        try:
            check_address(args.address)
        except ClusterAddressError as error:
            raise UsageError(f"argument --address: {error}") from error


def add_parser(commands: argparse._SubParsersAction) -> None:
    from medseg.apps.compare.spec import BACKENDS
    from medseg.losses import LOSSES
    from medseg.networks import NETWORKS

    compare = commands.add_parser(
        "compare-losses",
        help="k-fold, several-seed comparison of losses (and networks) through a bundle, with the tests that decide",
        description="Train and evaluate every (network, loss, fold, seed) with the bundle's own configs, each run in "
        "its own folder, on this machine or as Ray tasks on a cluster; finished runs are skipped when the command "
        "runs again. Writes results.csv (every run's and every test case's metrics), statistics.csv and report.md "
        "(each loss against the baseline: per-case Wilcoxon test, bootstrap interval, fold t-test, Holm correction, "
        "seed noise and a verdict; the papers' tables) and PNG plots.",
    )
    compare.add_argument("--bundle", required=True, type=folder, help="the bundle folder, e.g. bundles/cxr_lung_unet")
    compare.add_argument("--datalist", required=True, help="a medseg prepare datalist with its folds")
    compare.add_argument("--losses", required=True, type=names("loss", LOSSES), help="comma-separated loss names")
    compare.add_argument(
        "--networks", type=names("network", NETWORKS), help="comma-separated network names (default: the bundle's)"
    )
    compare.add_argument("--folds", type=integer(1), default=4, help="folds 0..k-1 (default 4)")
    compare.add_argument(
        "--seeds", type=seeds, default=[0], help="comma-separated seeds, one run each per (network, loss, fold) (0)"
    )
    budget = compare.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=integer(1), help="epochs per run")
    budget.add_argument("--minutes", type=positive, help="wall-clock minutes of training per run")
    compare.add_argument("--out", required=True, help="the comparison's folder")
    compare.add_argument("--baseline", default="bce", help="the loss the others are tested against (default bce)")
    compare.add_argument(
        "--label",
        help='models of several labels (--set \'labels=["hair","skin"]\'): the verdicts on this label\'s IoU and '
        "Dice (default: their mean over the labels)",
    )
    compare.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    compare.add_argument("--backend", choices=BACKENDS, default="local",
                         help="local: processes on this machine (default); ray: a Ray task per run")  # fmt: skip
    compare.add_argument("--jobs", type=integer(1), default=1, help="local backend: runs at a time, each on one device")
    compare.add_argument(
        "--address",
        help="ray backend: the cluster, HOST:PORT or auto (default: a Ray instance of this command's own, on this "
        "machine's 127.0.0.1, stopped at the end; never a cluster already running here)",
    )
    compare.add_argument(
        "--cpus-per-run",
        type=positive,
        help="CPU threads of each run (default: local, the cores shared out among --jobs; ray, 1)",
    )
    compare.add_argument(
        "--gpus-per-run", type=non_negative, default=0.0, help="ray backend: GPUs of each run (0.25: four per GPU)"
    )
    compare.add_argument(
        "--spatial-size",
        "--spatial_size",
        dest="spatial_size",
        type=integer(1),
        nargs=2,
        action=GivenOnce,
        metavar=("H", "W"),
        help="the bundle's spatial_size for every run",
    )
    compare.add_argument(
        "--batch-size", "--batch_size", dest="batch_size", type=integer(1), help="the bundle's batch_size for every run"
    )
    compare.add_argument("--set", action="append", type=setting, metavar="KEY=VALUE", help="another bundle override")
    compare.set_defaults(func=run, command_parser=compare)
