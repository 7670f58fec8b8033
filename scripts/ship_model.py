"""Ship a trained model with medseg: ``medseg/pretrained/<name>/`` from a trained model's folder.

    python scripts/ship_model.py --model-dir outputs/cxr --name cxr-lungs --card-info cxr-lungs.json \\
        --golden examples/CHNCXR_0001_0.jpg ../shared/data/cxr_shenzhen/images/CHNCXR_0002_0.jpg

``--model-dir``: a bundle run's ``--output_dir``, trained and evaluated (``models/model.pt`` and ``settings.json``,
``history.json``, ``eval/summary.json``, ``datalist.json``). ``--golden``: the inputs of the golden cases, which ship
inside the package: redistributable images only (the CC0 Shenzhen radiographs, ``medseg synth`` images).
``--card-info``: a JSON object (:class:`medseg.apps.model_card.CardInfo`) with ``training_command`` and
``training_data`` (each source's ``name``, ``cases``, ``licence``, ``source``), and optionally ``intended_use``,
``input``, ``results`` (per data source; default: the evaluation's, per source), ``failure_modes``, ``commit``.

It stores the weights in half precision when the golden masks stay the same (Dice 1: every pixel; ``--half-min-dice``
accepts less, recorded in the manifest and the card), exports them to ONNX, keeps an
8-bit quantized ONNX when every golden mask keeps Dice ≥ 0.99 against full precision, writes the model card and the
manifest with every file's SHA-256, and refuses a folder above 10 MB (:func:`medseg.apps.shipping.ship_model`).
Exit status: 0 shipped; 1 the model cannot be shipped (one line naming the file and the problem; nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medseg.apps.model_card import CardInfo, ModelCardError
from medseg.apps.shipping import HALF_MIN_DICE, INT8_MIN_DICE, MAX_MODEL_BYTES, ShipError, ship_model
from medseg.export import ExportError
from medseg.inference import CheckpointError
from medseg.pipeline import SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, type=Path, help="the trained and evaluated model's folder")
    parser.add_argument("--name", required=True, help="the shipped model's name (lower-case, dashes: cxr-lungs)")
    parser.add_argument("--golden", nargs="+", required=True, help="the golden cases' inputs (redistributable)")
    parser.add_argument("--card-info", required=True, type=Path, help="the card info JSON (see above)")
    parser.add_argument(
        "--commit", help="the commit it was trained at (default: the card info's, else this checkout's HEAD)"
    )
    parser.add_argument("--root", type=Path, help="the folder of shipped models (default: medseg/pretrained)")
    parser.add_argument("--overwrite", action="store_true", help="replace a model shipped under that name")
    parser.add_argument("--no-quantize", dest="quantize", action="store_false", help="ship no 8-bit ONNX")
    parser.add_argument(
        "--half-min-dice", type=float, default=HALF_MIN_DICE,
        help="the least golden Dice of half-precision weights against float32 for them to be stored (default 1: the "
        "same masks)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        report = ship_model(
            args.model_dir, args.name, args.golden, CardInfo.read(args.card_info), root=args.root,
            commit=args.commit, overwrite=args.overwrite, quantize=args.quantize, half_min_dice=args.half_min_dice,
        )  # fmt: skip
    except (ShipError, ModelCardError, SettingsError, CheckpointError, ExportError, ValueError) as error:
        print(f"ship_model: error: {error}", file=sys.stderr)
        return 1
    manifest = report.manifest
    limit = MAX_MODEL_BYTES / 1e6
    print(f"shipped {manifest.name}: {report.folder} ({report.size / 1e6:.2f} MB of at most {limit:.0f})")
    print(
        f"  weights: {manifest.weights_precision} (golden masks' least Dice of half precision against float32 "
        f"{min(report.half_dice):.4f}; kept at >= {args.half_min_dice})"
    )
    print(f"  ONNX Runtime: least golden Dice against PyTorch {min(report.onnx_dice):.4f}")
    if report.int8_kept:
        print(f"  8-bit ONNX kept: least golden Dice {min(report.int8_dice):.4f} (>= {INT8_MIN_DICE})")
    else:
        print(f"  no 8-bit ONNX: {report.int8_note}")
    for relative, entry in manifest.files.items():
        if not relative.startswith("golden/"):
            print(f"  {relative}: {entry['size'] / 1e6:.2f} MB")
    where = f"MEDSEG_PRETRAINED={args.root} " if args.root else ""
    print(f"check it: {where}medseg infer --model {manifest.name} --verify [--runtime onnxruntime]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
