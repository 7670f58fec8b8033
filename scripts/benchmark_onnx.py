"""ONNX Runtime against PyTorch for ``medseg infer``: seconds per radiograph and per CT volume, side by side.

For each case the bundle's network (random weights: the forward pass's cost does not depend on them) is exported by
:func:`medseg.export.export_onnx` and two :class:`medseg.inference.Predictor` are built on the same settings, one on
``models/model.pt`` (PyTorch) and one on ``models/model.onnx`` (ONNX Runtime, as many intra-op threads as PyTorch).
The pre-processed image is loaded once; then ``Predictor.predict`` (the inferer with the bundle's test-time flips
and shifts, the network, the sigmoid, the inversion to the input's grid) runs alternately on each backend,
``--repeats`` times after one untimed warm-up each, and the medians are compared. The forward passes alone are timed
with hooks on the network. The masks of the two backends are compared too (Dice of the thresholded probabilities).

- chest X-ray: the first ``--radiographs`` of ``shared/data/cxr_openist`` (else synthetic ones) through
  ``cxr_lung_unet``'s network and settings (256x256, its test-time shifts);
- CT: the shared ``ct_cip/ct-64.nrrd`` volume (64x64x79; else a synthetic one) slice by slice through
  ``luna16_segcaps``'s SegCaps R3 at ``--ct-size`` (default 64, the volume's own in-plane size: SegCaps at the
  bundle's 512x512 takes minutes a volume on a CPU).

With ``--model NAME`` it measures a shipped model (:mod:`medseg.pretrained`, its trained weights) instead, on its
golden inputs (or ``--input`` files): PyTorch on ``models/model.pt``, ONNX Runtime on ``models/model.onnx`` and,
where the model ships one, on its 8-bit ``models/model.int8.onnx``, side by side in one process, alternately; each
row gives the seconds per case, the ratio to PyTorch (whole pipeline and forward passes) and the least Dice of the
masks against PyTorch's.

    python scripts/benchmark_onnx.py [--radiographs 3] [--repeats 5] [--ct-size 64] [--cases cxr ct]
    python scripts/benchmark_onnx.py --model cxr-lungs [--input FILE ...] [--repeats 7]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks' helpers
from benchmark_inference import ForwardTimer, checkpoint_for, shared_data_root

from medseg.data.synthetic import make_cxr
from medseg.export import export_onnx
from medseg.inference import Predictor, model_settings
from medseg.pipeline import ModelSettings


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)


def measure(settings: ModelSettings, model_files: dict[str, Path], inputs: list[Path], repeats: int) -> dict:
    """Median seconds per case of ``Predictor.predict`` and of its forward passes on each backend (``model_files``:
    backend name -> model file, the first one the reference), run alternately, and each backend's least Dice of its
    masks against the reference's."""
    predictors = {backend: Predictor(settings, path) for backend, path in model_files.items()}
    timers = {
        backend: ForwardTimer(predictor.network, torch.device("cpu")) for backend, predictor in predictors.items()
    }
    # each predictor inverts the transforms of its own pre-processing: its own items
    items = {backend: [predictor.load(path) for path in inputs] for backend, predictor in predictors.items()}
    seconds = {backend: [] for backend in predictors}
    forward = {backend: [] for backend in predictors}
    masks = {}
    for backend, predictor in predictors.items():  # warm-up: first calls allocate and plan
        predicted = [predictor.predict(copy.deepcopy(item)) for item in items[backend]]
        masks[backend] = [np.asarray(probabilities) > settings.threshold for probabilities in predicted]
    for _ in range(repeats):
        for backend, predictor in predictors.items():  # alternately, so that all see the same machine
            fresh = copy.deepcopy(items[backend])  # the inversion consumes an item's record of its transforms
            timers[backend].seconds = 0.0
            start = time.perf_counter()
            for item in fresh:
                predictor.predict(item)
            seconds[backend].append((time.perf_counter() - start) / len(inputs))
            forward[backend].append(timers[backend].seconds / len(inputs))
    reference = next(iter(model_files))
    return {
        backend: {
            "seconds": statistics.median(seconds[backend]),
            "forward": statistics.median(forward[backend]),
            "dice": min(_dice(a, b) for a, b in zip(masks[reference], masks[backend])),
        }
        for backend in predictors
    }


def compare(name: str, checkpoint: Path, inputs: list[Path], repeats: int) -> None:
    """Print a table row: median seconds per case on each backend, their ratio, the forward passes' ratio, and the
    lowest Dice between the two backends' masks."""
    export = export_onnx(checkpoint.parent.parent)
    settings = model_settings(checkpoint)
    result = measure(settings, {"pytorch": checkpoint, "onnxruntime": export.path}, inputs, repeats)
    torch_, onnx = result["pytorch"], result["onnxruntime"]
    print(
        f"| {name} | {settings.network_name} {'x'.join(map(str, settings.spatial_size))} | {len(inputs)} | "
        f"{torch_['seconds']:.3f} | {onnx['seconds']:.3f} | **{torch_['seconds'] / onnx['seconds']:.2f}x** | "
        f"{torch_['forward'] / onnx['forward']:.2f}x | {onnx['dice']:.4f} |"
    )


def compare_shipped(name: str, inputs: list[str], repeats: int) -> None:
    """Print the side-by-side table of a shipped model: PyTorch, ONNX Runtime and (if shipped) ONNX Runtime on the
    8-bit network, per case, with their ratios to PyTorch."""
    from medseg.apps.golden import read_golden
    from medseg.inference import RUNTIMES
    from medseg.pretrained import get_model

    model = get_model(name).verify()
    models = model.folder / "models"
    files = {runtime: models / RUNTIMES[runtime] for runtime in model.manifest.runtimes}
    if inputs:
        paths = [Path(path) for path in inputs]
    else:
        paths = [model.folder / case.input for case in read_golden(model.folder)]
    settings = model_settings(files["pytorch"])
    result = measure(settings, files, paths, repeats)
    names = {"pytorch": "PyTorch", "onnxruntime": "ONNX Runtime (float32)", "onnxruntime-int8": "ONNX Runtime (int8)"}
    print(
        f"\n{name}: {settings.network_name} {'x'.join(map(str, settings.spatial_size))}, {len(paths)} case(s) "
        f"({'--input' if inputs else 'its golden inputs'}), weights stored in {model.manifest.weights_precision}\n"
    )
    print("| runtime | s/case | speed-up vs PyTorch | forward speed-up | min Dice vs PyTorch |")
    print("|---|---:|---:|---:|---:|")
    base = result["pytorch"]
    for runtime, row in result.items():
        print(
            f"| {names.get(runtime, runtime)} | {row['seconds']:.3f} | **{base['seconds'] / row['seconds']:.2f}x** | "
            f"{base['forward'] / row['forward']:.2f}x | {row['dice']:.4f} |"
        )
    if "onnxruntime-int8" not in result:
        print(f"\n{name} ships no 8-bit network (its quantization did not keep the golden masks, or was not asked)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--radiographs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ct-size", type=int, default=64, help="in-plane size SegCaps sees (the bundle's: 512)")
    parser.add_argument("--cases", nargs="+", choices=("cxr", "ct"), default=["cxr", "ct"])
    parser.add_argument("--model", help="a shipped model (medseg models): its runtimes side by side instead")
    parser.add_argument("--input", nargs="+", default=[], help="with --model: the cases (default: its golden inputs)")
    args = parser.parse_args()
    import onnxruntime

    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {torch.get_num_threads()} CPU threads, "
        f"median of {args.repeats} alternating repeats"
    )
    if args.model:
        compare_shipped(args.model, args.input, args.repeats)
        return
    print(
        "\n| case | network | cases | PyTorch s/case | ONNX Runtime s/case | speed-up | forward speed-up | min Dice |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if "cxr" in args.cases:
            radiographs = sorted((shared_data_root() / "cxr_openist").glob("*.jpg"))[: args.radiographs]
            if not radiographs:
                radiographs = make_cxr(root / "cxr", n=args.radiographs, seed=0, size=(2048, 2500))
            checkpoint = checkpoint_for("cxr_lung_unet", root / "cxr" / "models", None)
            compare("chest X-ray (cxr_lung_unet)", checkpoint, radiographs, args.repeats)
        if "ct" in args.cases:
            volume = shared_data_root() / "ct_cip" / "ct-64.nrrd"
            checkpoint = checkpoint_for("luna16_segcaps", root / "ct" / "models", None)
            settings = model_settings(checkpoint).replace(spatial_size=(args.ct_size, args.ct_size))
            settings.save(checkpoint.parent)
            if not volume.is_file():
                raise SystemExit(f"{volume}: the shared CT volume is not there (set MEDSEG_SHARED_DATA)")
            compare("CT volume 64x64x79 (luna16_segcaps)", checkpoint, [volume], args.repeats)


if __name__ == "__main__":
    main()
