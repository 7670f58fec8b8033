"""Seconds per case of ``medseg infer`` and the share spent outside the network's forward pass.

Two cases, each run by :func:`medseg.inference.run_inference` exactly as ``medseg infer`` runs them (reading and
checking the input, the bundle's pre-processing, the inferer, inversion to the input's grid, the threshold and the
bundle's mask cleaning, writing the mask atomically):

- a synthetic 512x512x100 CT DICOM series (``medseg.data.synthetic.make_dicom_ct``) through the
  ``luna16_segcaps`` bundle's network and settings (2D network, slice by slice);
- chest X-rays (the first ``--radiographs`` of ``shared/data/cxr_openist`` when present, else synthetic ones)
  through ``cxr_lung_unet``'s, as one batch: seconds per case is the batch's time over its cases. Three ways, side
  by side: as ``medseg infer --model-dir`` runs by default (the bundle's test-time shifts: five passes of the network;
  masks cleaned), in one pass (``--test-time-shift 0``), and in one pass with the masks as thresholded.

The networks have random weights unless ``--cxr-checkpoint`` gives a trained chest X-ray model (a bundle's
``models/model.pt`` with its ``settings.json``). The forward pass does not depend on the weights, but writing does:
a random network's speckled mask takes longer to compress than a trained one's two lungs. The radiographs' first
case runs once untimed first (a warm-up: the first call of a network and of each transform allocates and imports;
the CT series takes minutes, which makes that negligible). The forward pass is timed with hooks on
the network; everything else (reading, pre- and post-processing, writing) is the rest. Target: at least 80 % of
the time in the forward pass on CPU.

    python scripts/benchmark_inference.py [--ct-network segcaps_r3] [--cxr-network unet2d] [--slices 100]
                                          [--radiographs 10] [--cxr-checkpoint models/model.pt]
                                          [--cases ct cxr] [--device cpu|cuda] [--amp]

On CUDA the forward hooks synchronise the device, so the forward pass's time is the kernels' time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from medseg.bundle import read_config
from medseg.data.synthetic import make_cxr, make_dicom_ct
from medseg.inference import InferenceOptions, Predictor, find_cases, model_settings, run_inference
from medseg.pipeline import build_network, mask_postprocessing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' helpers
from support import shared_data_root

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


class ForwardTimer:
    """Seconds spent inside ``network.forward`` (all calls), measured with forward hooks."""

    def __init__(self, network: torch.nn.Module, device: torch.device) -> None:
        self.seconds, self._start = 0.0, 0.0
        self._synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda: None
        network.register_forward_pre_hook(self._before)
        network.register_forward_hook(self._after)

    def _before(self, module, args) -> None:
        self._synchronize()  # on CUDA, the kernels queued before the call are not its time
        self._start = time.perf_counter()

    def _after(self, module, args, output) -> None:
        self._synchronize()
        self.seconds += time.perf_counter() - self._start


def checkpoint_for(bundle: str, folder: Path, network_name: str | None) -> Path:
    """A random-weight checkpoint of the bundle's network (or ``network_name``) with its settings.json."""
    settings = read_config(BUNDLES / bundle, "train").get_parsed_content("model")
    if network_name and network_name != settings.network_name:
        settings = settings.replace(network_name=network_name, network_kwargs={})
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(build_network(settings).state_dict(), folder / "model.pt")
    settings.save(folder)
    return folder / "model.pt"


def measure(
    name: str,
    bundle: str,
    checkpoint: Path,
    sources: list[Path],
    output: Path,
    batch_size: int,
    warm_up: bool,
    cleaning: bool = True,
    shift: int | None = None,
    device: str = "cpu",
    amp: bool = False,
) -> None:
    """Print a table row: seconds per case of ``run_inference`` on ``sources``, and the forward pass's share; run as
    ``medseg infer --model-dir`` runs by default (the model's test-time flips and shifts, its ``keep_largest`` and
    ``fill_holes``), or with ``shift`` pixels of test-time shift (``--test-time-shift``) and, with
    ``cleaning=False``, masks as thresholded (``--keep-largest 0 --fill-holes false``)."""
    settings = model_settings(checkpoint, test_time_shift=shift)
    if not cleaning:
        settings = settings.replace(keep_largest=None, fill_holes=False)
    predictor = Predictor(settings, checkpoint, device=device, amp=amp, batch_size=batch_size)
    postprocessing = mask_postprocessing(settings)
    options = InferenceOptions(postprocessing=postprocessing)
    cases = find_cases(sources)
    if warm_up:
        run_inference(predictor, cases[:1], output / "warm-up", options, progress=False)
    timer = ForwardTimer(predictor.network, predictor.device)
    start = time.perf_counter()
    summary = run_inference(predictor, cases, output / "timed", options, progress=False)
    total = (time.perf_counter() - start) / len(cases)
    forward = timer.seconds / len(cases)
    failed = [record for record in summary["cases"] if record["status"] != "ok"]
    assert not failed, failed
    print(
        f"| {name} | {settings.network_name} | {len(cases)} | {total:.3f} | {forward:.3f} | {total - forward:.3f} | "
        f"{100 * forward / total:.1f} % |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ct-network", help="registry name for the CT case (default: the luna16 bundle's)")
    parser.add_argument("--cxr-network", help="registry name for the chest X-ray (default: the cxr bundle's)")
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--radiographs", type=int, default=10, help="chest X-rays in the timed batch")
    parser.add_argument("--batch-size", type=int, default=4, help="slices or windows per forward pass")
    parser.add_argument(
        "--cxr-checkpoint",
        type=Path,
        help="trained chest X-ray model.pt, settings.json beside it (replaces --cxr-network)",
    )
    parser.add_argument("--cases", nargs="+", choices=("ct", "cxr"), default=["ct", "cxr"], help="default: both")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    args = parser.parse_args()
    on = {"device": args.device, "amp": args.amp}
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if "ct" in args.cases:
            [series] = make_dicom_ct(root / "ct", n=1, seed=0, shape=(args.slices, 512, 512))
        radiographs = sorted((shared_data_root() / "cxr_openist").glob("*.jpg"))[: args.radiographs]
        if not radiographs:
            radiographs = make_cxr(root / "cxr", n=args.radiographs, seed=0, size=(2048, 2500))
        sizes = sorted({Image.open(path).size for path in radiographs})
        where = torch.cuda.get_device_name() if args.device == "cuda" else f"{torch.get_num_threads()} CPU threads"
        print(f"torch {torch.__version__}, {where}{', AMP' if args.amp else ''}, batch {args.batch_size}")
        columns = ["case", "network", "cases", "seconds per case", "forward pass (s)", "rest (s)", "forward share"]
        print("\n| " + " | ".join(columns) + " |")
        print("|---|---|---:|---:|---:|---:|---:|")
        if "ct" in args.cases:
            ct = checkpoint_for("luna16_segcaps", root / "ct-model", args.ct_network)
            ct_name = f"CT DICOM series 512x512x{args.slices}"
            measure(ct_name, "luna16_segcaps", ct, [series], root / "out-ct", args.batch_size, False, **on)
        if "cxr" not in args.cases:
            return
        cxr = args.cxr_checkpoint or checkpoint_for("cxr_lung_unet", root / "cxr-model", args.cxr_network)
        kind = radiographs[0].suffix[1:].upper()
        size = "x".join(map(str, sizes[0])) + (f" to {'x'.join(map(str, sizes[-1]))}" if len(sizes) > 1 else "")
        name = f"chest X-ray {kind} {size}, {'trained' if args.cxr_checkpoint else 'random'} weights"
        variants = {"": (True, None), ", one pass": (True, 0), ", one pass, masks not cleaned": (False, 0)}
        for index, (suffix, (cleaning, shift)) in enumerate(variants.items()):
            output = root / f"out-cxr-{index}"
            batch = args.batch_size
            measure(name + suffix, "cxr_lung_unet", cxr, radiographs, output, batch, True, cleaning, shift, **on)


if __name__ == "__main__":
    main()
