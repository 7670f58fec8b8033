"""``medseg export``: a trained bundle's network as ONNX, beside the record of its pipeline.

``medseg export --bundle DIR --format onnx --out DIR`` writes ``DIR/models/model.onnx`` and ``settings.json``
(:func:`medseg.export.export_onnx`); ``medseg infer --bundle DIR --backend onnxruntime`` and the bundle's
``configs/inference_onnx.json`` run it. Exit status: 0 exported; 1 the network cannot be exported (the message says
why, and nothing is written); 2 a usage error (a bundle without trained weights or settings).
"""

from __future__ import annotations

import argparse
import sys

from .arguments import UsageError, folder

__all__ = ["add_parser", "run"]

#: The formats ``--format`` takes.
FORMATS = ("onnx",)


def run(args: argparse.Namespace) -> int:
    from medseg.export import ExportError, export_onnx
    from medseg.files import OutputPathError, check_output_folder
    from medseg.inference import CheckpointError
    from medseg.pipeline import SettingsFileError

    out = args.out or args.bundle
    try:
        check_output_folder(out)
    except OutputPathError as error:
        raise UsageError(f"argument --out: {error}") from error
    try:
        export = export_onnx(args.bundle, out)
    except ImportError as error:
        raise UsageError(f"argument --format: {error}") from error
    except (SettingsFileError, CheckpointError) as error:
        raise UsageError(f"argument --bundle: {error}") from error
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
        help="export a trained bundle's network to ONNX, for medseg infer --backend onnxruntime",
        description="Export the trained network of a bundle (models/model.pt) to ONNX, with dynamic batch and "
        "spatial axes where the network allows, checked against PyTorch with ONNX Runtime, and write it with the "
        "model's settings.json (its pre- and post-processing) into OUT/models/. Exit status: 0 exported, 1 the "
        "network cannot be exported (nothing written), 2 bad arguments.",
    )
    export.add_argument("--bundle", type=folder, required=True, help="a bundle (or run) folder with models/model.pt")
    export.add_argument("--format", choices=FORMATS, default="onnx", help="the format (default: onnx)")
    export.add_argument("--out", help="the folder to write models/model.onnx into (default: the bundle)")
    export.set_defaults(func=run, command_parser=export)
