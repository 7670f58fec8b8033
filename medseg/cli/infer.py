"""``medseg infer``: segment DICOM series, NIfTI/NRRD/MHA volumes, radiographs or photos with a trained model.

The model is applied with the record its model file carries (:func:`medseg.inference.model_settings`), as a bundle's
``inference.json`` applies it. Flags that describe how it is applied (threshold, mask cleaning, test-time shift)
override the record; flags that describe the model (``--task``, ``--network-name``, ``--spatial-size``) are needed
only for a checkpoint without a record, and contradicting the record is a usage error.

``--model NAME`` runs a model shipped with medseg (:mod:`medseg.pretrained`, listed by ``medseg models``) exactly
as ``--model-dir`` runs a trained model's folder, once its files match the digests of its manifest; nothing is ever
written into the shipped models' folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .arguments import GivenOnce, UsageError, add_model_dir, boolean, entropy_bits, integer, probability_or_otsu

if TYPE_CHECKING:
    from medseg.inference import Case, Predictor
    from medseg.pipeline import ModelSettings

__all__ = ["NEEDS_REVIEW", "RUNTIME_CHOICES", "add_parser", "run"]

#: The exit status when every case was segmented but one or more need review (``--review-threshold``).
NEEDS_REVIEW = 3
#: ``--runtime``: the names of :data:`medseg.inference.RUNTIMES` (spelled here so that ``--help`` imports no torch).
RUNTIME_CHOICES = ("pytorch", "onnxruntime", "onnxruntime-int8")


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "task": args.task,
        "network_name": args.network_name,
        "spatial_size": args.spatial_size,
        "threshold": args.threshold,
        "keep_largest": args.keep_largest,
        "fill_holes": args.fill_holes,
        "test_time_shift": args.test_time_shift,
    }


def _source(args: argparse.Namespace) -> str:
    if getattr(args, "model", None):
        return "--model"
    return "--model-dir" if args.model_dir else "--checkpoint"


def _shipped(args: argparse.Namespace) -> None:
    """``--model NAME``: the shipped model's folder as ``--model-dir``, once its files match its manifest."""
    if not args.model:
        return
    from medseg.pretrained import ManifestError, UnknownModelError, get_model

    try:
        args.model_dir = str(get_model(args.model).verify().folder)
    except (UnknownModelError, ManifestError) as error:
        raise UsageError(f"argument --model: {error}") from error


def _check_not_shipped(output: Path) -> None:
    """Refuse an output folder inside the shipped models' folder (the package's, or ``$MEDSEG_PRETRAINED``)."""
    from medseg.pretrained import package_root, pretrained_root

    resolved = output.resolve()
    for root in {package_root(), pretrained_root()}:
        if resolved == root or root in resolved.parents:
            raise UsageError(f"argument --output: {output} is inside the shipped models' folder {root}; give another")


def _settings(args: argparse.Namespace, model_file: Path) -> ModelSettings:
    """The model file's record with the flags given, or (no record) the model the flags describe."""
    from medseg.inference import CheckpointError, recorded_settings
    from medseg.pipeline import ModelSettings, SettingsError

    given = _given(args)
    try:
        recorded = recorded_settings(model_file)
        if recorded is not None:
            return recorded.with_given(model_file, **given)
        missing = [flag for flag, name in (("--task", "task"), ("--network-name", "network_name"),
                                           ("--spatial-size", "spatial_size")) if given[name] is None]  # fmt: skip
        if missing:
            raise UsageError(f"argument {_source(args)}: {model_file}: no settings recorded; give {', '.join(missing)}")
        return ModelSettings(**{name: value for name, value in given.items() if value is not None})
    except (SettingsError, CheckpointError) as error:
        raise UsageError(f"argument {_source(args)}: {error}") from error


def _setup(args: argparse.Namespace) -> tuple[Predictor, list[Case], Path]:
    """The predictor and cases of ``medseg infer``; any problem with the arguments is a usage error."""
    import torch

    from medseg.files import OutputPathError, check_output_folder
    from medseg.inference import CheckpointError, InputError, Predictor, find_cases

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("argument --device: cuda asked, but PyTorch sees no CUDA device")
    if args.rtstruct and importlib.util.find_spec("rt_utils") is None:
        raise UsageError("argument --rtstruct: rt-utils is not installed: pip install -e '.[rtstruct]'")
    onnx = args.runtime != "pytorch"
    if onnx and args.amp:
        raise UsageError("argument --amp: mixed precision is PyTorch's (--runtime pytorch)")
    try:
        output = check_output_folder(args.output)
    except OutputPathError as error:
        raise UsageError(f"argument --output: {error}") from error
    _check_not_shipped(output)
    checkpoint = _checkpoint(args)
    model_file = _model_file(args, checkpoint) if onnx else checkpoint
    if not model_file.is_file():
        raise UsageError(
            f"argument {_source(args)}: {model_file}: no trained weights there; train them with a bundle's "
            "configs/train.json (its --output_dir is the model folder)"
        )
    settings = _settings(args, model_file)
    try:
        cases = find_cases(args.input, args.series_uid, volumetric=settings.volumetric)
    except InputError as error:
        raise UsageError(f"argument --input: {error}") from error
    for case in cases:
        parent = case.path if case.path.is_dir() else case.path.parent
        if parent.resolve() == output.resolve():
            raise UsageError(f"argument --output: {output} holds the input {case.path}; give another folder")
    try:  # an ONNX file is checked against the model.pt beside it (OnnxNetwork.check_origin)
        predictor = Predictor(settings, model_file, device=args.device, amp=args.amp, batch_size=args.batch_size)
    except CheckpointError as error:
        raise UsageError(f"argument {_source(args)}: {error}") from error
    except ImportError as error:
        raise UsageError(f"argument --runtime: {error}") from error
    return predictor, cases, output


def _checkpoint(args: argparse.Namespace) -> Path:
    return Path(args.checkpoint) if args.checkpoint else Path(args.model_dir) / "models" / "model.pt"


def _model_file(args: argparse.Namespace, checkpoint: Path) -> Path:
    """The ONNX file an ONNX Runtime ``--runtime`` runs: the model folder's ``models/model.onnx`` (or, for
    ``onnxruntime-int8``, ``models/model.int8.onnx``), or ``--checkpoint``'s ``.onnx`` file (a ``.pt`` given there
    names the exported file beside it)."""
    from medseg.inference import RUNTIMES

    model_file = checkpoint if checkpoint.suffix == ".onnx" else checkpoint.parent / RUNTIMES[args.runtime]
    if model_file.is_file():
        return model_file
    if args.runtime == "onnxruntime-int8":
        raise UsageError(
            f"argument {_source(args)}: {model_file}: no 8-bit network for --runtime onnxruntime-int8; shipped models "
            "carry one where it keeps their golden masks (`medseg models` lists their runtimes)"
        )
    folder = args.model_dir or checkpoint.parent.parent
    raise UsageError(
        f"argument {_source(args)}: {model_file}: no exported model for --runtime onnxruntime; export it first "
        f"with `medseg export --model-dir {folder} --format onnx`"
    )


def _verify(args: argparse.Namespace) -> int:
    """``--verify``: the golden cases of the model folder segmented again; exit 1 when any differs from its expected
    mask."""
    from medseg.apps.golden import VERIFY_DICE, GoldenError, verify_golden
    from medseg.inference import CheckpointError
    from medseg.pipeline import SettingsError

    if not args.model_dir:
        raise UsageError("argument --verify: checks a trained model's golden cases; give --model-dir or --model")
    checkpoint = _checkpoint(args)
    model_file = _model_file(args, checkpoint) if args.runtime != "pytorch" else checkpoint
    try:
        results = verify_golden(args.model_dir, model_file, device=args.device)
    except (GoldenError, CheckpointError, SettingsError) as error:
        raise UsageError(f"argument {_source(args)}: {error}") from error
    for result in results:
        detail = result["error"] or f"Dice {result['dice']:.4f} against the expected mask (at least {VERIFY_DICE})"
        print(f"{'ok' if result['ok'] else 'FAILED':>7s}  {result['case']}: {detail}")
    failed = sum(not result["ok"] for result in results)
    print(f"{len(results) - failed} of {len(results)} golden cases as recorded ({args.runtime} on {args.device})")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    _shipped(args)
    if args.verify:
        return _verify(args)
    if not args.input or not args.output:
        raise UsageError("the following arguments are required: --input, --output (or --verify)")
    from medseg.files import OutputLockedError
    from medseg.inference import InferenceOptions, run_inference
    from medseg.pipeline import mask_postprocessing

    predictor, cases, output = _setup(args)
    options = InferenceOptions(
        postprocessing=mask_postprocessing(predictor.settings, args.min_ratio, args.clear_border),
        probabilities=args.probabilities,
        dicom_seg=args.dicom_seg,
        overlay=args.overlay,
        overwrite=args.overwrite,
        rtstruct=args.rtstruct,
        uncertainty=args.uncertainty,
        review_threshold=args.review_threshold,
    )
    try:
        summary = run_inference(predictor, cases, output, options)
    except OutputLockedError as error:  # taken before any case is read
        raise UsageError(f"argument --output: {error}") from error
    except OSError as error:  # the summary could not be written at the end; the cases' outputs are complete
        reason = error.strerror or error
        print(f"medseg infer: error: cannot write {output / 'summary.json'}: {reason}", file=sys.stderr)
        return 1
    for record in summary["cases"]:
        detail = record["error"] if record["status"] != "ok" else ", ".join(record["outputs"].values())
        if record.get("review"):
            detail += f" (review: border entropy {record['border_entropy']:.3f} > {args.review_threshold})"
        print(f"{record['status']:>7s}  {record['case']}: {detail}")
    counts = summary["counts"]
    partial = f", {counts['partial']} without an output asked for" if counts["partial"] else ""
    done = (
        f"{counts['ok'] + counts['partial']} segmented{partial}, {counts['failed']} failed, {counts['skipped']} skipped"
    )
    review = f", {counts['review']} to review" if counts.get("review") else ""
    print(f"{done}{review}; {output / 'summary.json'}")
    if counts["failed"] or counts["partial"]:
        return 1
    return NEEDS_REVIEW if counts.get("review") else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    infer = commands.add_parser(
        "infer",
        help="segment DICOM series, NIfTI/NRRD/MHA volumes, radiographs or photos with a trained model",
        description="Segment each input with a trained model and its pre-processing, as recorded beside its "
        "checkpoint; write <case>_seg.nii.gz on the input's grid (and, if asked, probabilities, DICOM SEG, an overlay "
        "PNG, the entropy map) and summary.json. A bad input is reported with its reason and the others go on. Exit "
        "status: 0 all segmented, 1 any failed, 2 bad arguments, 3 all segmented but some need review.",
    )
    source = infer.add_mutually_exclusive_group(required=True)
    add_model_dir(source, required=False)
    source.add_argument(
        "--model", metavar="NAME", help="a model shipped with medseg (medseg models lists them), run as --model-dir "
        "runs a trained model's folder once its files match its manifest's digests",
    )  # fmt: skip
    source.add_argument("--checkpoint", help="a model file: a state dict (.pt) or an ONNX export (.onnx)")
    model = infer.add_argument_group("the model, for a checkpoint without a record (else taken from it)")
    model.add_argument("--task", help="the task (luna16, ct, cxr, lfw, helen)")
    model.add_argument("--network-name", "--network_name", dest="network_name", help="the network's registry name")
    model.add_argument(
        "--spatial-size", "--spatial_size", dest="spatial_size", type=integer(1), nargs=2, metavar=("H", "W"),
        action=GivenOnce, help="the spatial size the network saw",
    )  # fmt: skip
    infer.add_argument(
        "--input", nargs="+", action="extend", help="files, folders, DICOM series folders or globs (repeatable)"
    )
    infer.add_argument("--output", action=GivenOnce, help="the output folder (not an input folder)")
    infer.add_argument(
        "--verify", action="store_true", help="instead: segment the model's golden cases (written by medseg card, or "
        "shipped) again and exit 1 if any mask's Dice against the expected one is below 0.99",
    )  # fmt: skip
    infer.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    infer.add_argument(
        "--runtime", choices=RUNTIME_CHOICES, default="pytorch",
        help="what runs the network: PyTorch on models/model.pt, ONNX Runtime on models/model.onnx (written by "
        "medseg export), or on models/model.int8.onnx, the 8-bit network some shipped models carry (masks within "
        "the Dice their manifest records of full precision's, not the same); the pre- and post-processing are the "
        "same",
    )  # fmt: skip
    applied = infer.add_argument_group("how the model is applied (default: as it was trained)")
    applied.add_argument("--threshold", type=probability_or_otsu, help="a probability in (0, 1), or otsu")
    applied.add_argument(
        "--keep-largest", "--keep_largest", dest="keep_largest", type=integer(0),
        help="keep the N largest connected components; 0 keeps all",
    )  # fmt: skip
    applied.add_argument(
        "--fill-holes", "--fill_holes", dest="fill_holes", type=boolean, metavar="{true,false}",
        help="fill the holes of the mask",
    )  # fmt: skip
    applied.add_argument(
        "--test-time-shift", "--test_time_shift", dest="test_time_shift", type=integer(0), metavar="PIXELS",
        help="average the outputs over copies of the image moved by this many pixels along each in-plane axis; 0: off",
    )  # fmt: skip
    applied.add_argument(
        "--min-ratio", type=float, default=0.0, help="a kept component after the first must be this share of the "
        "largest (SegCaps: --keep-largest 2 --min-ratio 0.2)",
    )  # fmt: skip
    applied.add_argument(
        "--clear-border", action="store_true", help="first remove what touches the in-plane image border (the air "
        "around the body in CT), slice by slice",
    )  # fmt: skip
    infer.add_argument(
        "--dicom-seg", action="store_true", help="also write a DICOM SEG for DICOM inputs (with --probabilities, "
        "also the probability map as a fractional SEG, <case>_prob_seg.dcm)",
    )  # fmt: skip
    infer.add_argument(
        "--rtstruct", action="store_true", help="also write an RT Structure Set of the mask's contours for DICOM "
        "series inputs (<case>_rtstruct.dcm), for planning systems",
    )  # fmt: skip
    infer.add_argument("--overlay", action="store_true", help="also write a PNG of the mask's outline on the image")
    infer.add_argument("--probabilities", action="store_true", help="also write the probability map")
    infer.add_argument(
        "--uncertainty", action="store_true", help="also write the entropy map <case>_entropy.nii.gz (bits) and give "
        "in summary.json the mean entropy in the mask's border band and a volume interval",
    )  # fmt: skip
    infer.add_argument(
        "--review-threshold", type=entropy_bits, metavar="BITS", help="mark a case whose border band's mean entropy "
        "is above this as review in summary.json; exit 3 when any case needs review (and none failed)",
    )  # fmt: skip
    infer.add_argument("--batch-size", type=integer(1), default=4, help="windows or slices per forward pass")
    infer.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    infer.add_argument("--series-uid", help="in a folder of several DICOM series, the one to segment")
    infer.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip the case)")
    infer.set_defaults(func=run, command_parser=infer)
