"""``medseg export``: a trained model's network as ONNX, carrying the record of its pipeline.

``medseg export --model-dir DIR --format onnx --out DIR`` writes ``DIR/models/model.onnx`` and ``settings.json``
(:func:`medseg.export.export_onnx`); ``medseg infer --model-dir DIR --runtime onnxruntime`` and a bundle's
``configs/inference_onnx.json`` run it. Exit status: 0 exported; 1 the network cannot be exported (the message says
why, and nothing is written); 2 a usage error (a folder without trained weights or their record).
"""

from __future__ import annotations

import argparse
import sys

from .arguments import UsageError, add_model_dir

__all__ = ["add_parser", "run"]

#: The formats ``--format`` takes.
FORMATS = ("onnx",)


def run(args: argparse.Namespace) -> int:
    from medseg.export import ExportError, export_onnx
    from medseg.files import OutputPathError, check_output_folder
    from medseg.inference import CheckpointError
    from medseg.pipeline import SettingsError

    out = args.out or args.model_dir
    try:
        check_output_folder(out)
    except OutputPathError as error:
        raise UsageError(f"argument --out: {error}") from error
    try:
        export = export_onnx(args.model_dir, out)
    except ImportError as error:
        raise UsageError(f"argument --format: {error}") from error
    except (SettingsError, CheckpointError) as error:
        raise UsageError(f"argument --model-dir: {error}") from error
    except ExportError as error:
        print(f"medseg export: error: {error}", file=sys.stderr)
        return 1
    axes = "batch, height and width" if export.dynamic_spatial else "batch (height and width fixed)"
    print(
        f"{export.path} ({export.megabytes:.1f} MiB, dynamic {axes}; ONNX Runtime within {export.max_difference:.1g} "
        f"of PyTorch; {export.seconds:.0f} s) beside {export.settings_path}"
    )
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="export a trained model's network to ONNX, for medseg infer --runtime onnxruntime",
        description="Export the trained network of a model folder (models/model.pt) to ONNX, with dynamic batch and "
        "spatial axes where the network allows, checked against PyTorch with ONNX Runtime, and write it with the "
        "model's settings.json (its pre- and post-processing) into OUT/models/. Exit status: 0 exported, 1 the "
        "network cannot be exported (nothing written), 2 bad arguments.",
    )
    add_model_dir(export)
    export.add_argument("--format", choices=FORMATS, default="onnx", help="the format (default: onnx)")
    export.add_argument("--out", help="the folder to write models/model.onnx into (default: --model-dir)")
    export.set_defaults(func=run, command_parser=export)
