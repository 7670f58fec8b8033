"""The built-in demo (``make demo``): the chest X-ray bundle trained and evaluated on synthetic radiographs.

It writes a synthetic Montgomery-layout set, then runs the ``cxr_lung_unet`` bundle exactly as a user would,
``python -m monai.bundle run`` with its train config and then its evaluate config, printing each command. The
bundle trains a U-Net with medseg's focal-Tversky loss (the study's; the bundle's default, MONAI's Dice + BCE, was
measured better on real radiographs) on MONAI's engines and prints one line per epoch with
the validation Dice beside the Dice of the trivial "every pixel is lung" predictor; then it prints the test figures
and where the checkpoint, the curves, the overlays and the metrics are. It ends by segmenting a real radiograph
shipped in ``examples/`` (CC0, from the Shenzhen set) with the shipped model ``cxr-lungs``
(:func:`segment_example`, as ``medseg infer --model cxr-lungs --overlay`` does), printing where the mask and the
overlay are; a medseg without that model (or without the examples) says so and skips the step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from medseg.tasks import get_task

from .bundle_runs import bundle_command, run_bundle, shown

__all__ = ["EXAMPLE_MODEL", "DemoConfig", "default_bundle", "default_examples", "run_demo", "segment_example"]

#: The shipped model the demo segments the example radiographs with.
EXAMPLE_MODEL = "cxr-lungs"


def default_bundle() -> Path:
    """``bundles/cxr_lung_unet`` of the source checkout medseg runs from."""
    return Path(__file__).resolve().parents[2] / "bundles" / "cxr_lung_unet"


def default_examples() -> Path:
    """``examples/`` of the source checkout medseg runs from (CC0 Shenzhen radiographs)."""
    return Path(__file__).resolve().parents[2] / "examples"


def segment_example(
    out_dir: str | Path, examples: str | Path | None = None, model: str = EXAMPLE_MODEL
) -> dict[str, str] | None:
    """Segment the first example radiograph (``examples/CHNCXR_*.jpg``) with the shipped ``model`` into
    ``out_dir``, as ``medseg infer --model MODEL --overlay`` does, and print where its mask and overlay are; return
    their paths, or ``None`` (with a line saying why) when the model is not shipped or there is no example.

    Raises:
        ManifestError: when the shipped model's files do not match its manifest.
        RuntimeError: when the example cannot be segmented.
    """
    from medseg.inference import MODEL_FILE, InferenceOptions, Predictor, find_cases, model_settings, run_inference
    from medseg.pipeline import mask_postprocessing
    from medseg.pretrained import UnknownModelError, get_model, pretrained_root

    examples = Path(examples) if examples else default_examples()
    images = sorted(examples.glob("CHNCXR_*.jpg"))
    try:
        shipped = get_model(model)
    except UnknownModelError:
        print(f"\nskipped the real radiograph: the shipped model {model} is not in this medseg ({pretrained_root()})")
        return None
    if not images:
        print(f"\nskipped the real radiograph: no example radiograph (CHNCXR_*.jpg) in {examples}")
        return None
    shipped.verify()
    image, out = images[0], Path(out_dir)
    print(f"\nsegmenting a real radiograph (CC0, Shenzhen set): medseg infer --model {model} --input {image} "
          f"--output {out} --overlay")  # fmt: skip
    checkpoint = shipped.folder / "models" / MODEL_FILE
    predictor = Predictor(model_settings(checkpoint), checkpoint)
    options = InferenceOptions(postprocessing=mask_postprocessing(predictor.settings), overlay=True)
    (record,) = run_inference(predictor, find_cases([str(image)]), out, options, progress=False)["cases"]
    if record["status"] != "ok":
        raise RuntimeError(f"{image}: the example could not be segmented: {record['error']}")
    outputs = {kind: record["outputs"][kind] for kind in ("mask", "overlay")}
    print(f"{image.name}: mask {outputs['mask']}, overlay {outputs['overlay']}")
    return outputs


@dataclass
class DemoConfig:
    """Sizes of the demo; the defaults finish in about a minute of training on two CPU cores."""

    out_dir: str = "outputs/demo"
    bundle: str | None = None
    cases: int = 50
    spatial_size: tuple[int, int] = (128, 128)
    epochs: int = 20
    batch_size: int = 8
    seed: int = 0
    loss_name: str = "focal_tversky"
    extra: dict = field(default_factory=dict)
    #: end by segmenting a real example radiograph with the shipped model (:func:`segment_example`)
    example: bool = True
    #: the folder of example radiographs (default :func:`default_examples`)
    examples: str | None = None


def run_demo(config: DemoConfig | None = None) -> dict:
    """Run the demo; return the evaluation summary, the output folder and the example's mask and overlay (``None``
    when skipped)."""
    config = config or DemoConfig()
    bundle = Path(config.bundle) if config.bundle else default_bundle()
    if not (bundle / "configs" / "train.json").is_file():
        raise FileNotFoundError(f"{bundle}: not a bundle folder (no configs/train.json); pass --bundle")
    out = Path(config.out_dir).resolve()
    data = out / "data"
    print(f"synthesising {config.cases} chest radiographs (Montgomery layout) in {data}")
    get_task("cxr").synthesize(data, n=config.cases, seed=config.seed)
    settings = {
        "dataset_dir": data,
        "output_dir": out,
        "spatial_size": list(config.spatial_size),
        "batch_size": config.batch_size,
        "seed": config.seed,
        "loss_name": config.loss_name,
        **config.extra,
    }
    for workflow, more in (("train", {"epochs": config.epochs}), ("evaluate", {})):
        if run_bundle(bundle, workflow, {**settings, **more}).returncode:
            raise RuntimeError(f"the bundle run failed: {shown(bundle_command(workflow, {**settings, **more}))}")
    summary = json.loads((out / "eval" / "summary.json").read_text())
    print(f"\ndemo done: test Dice {summary['test_mean_dice']['mean']:.4f}, IoU {summary['test_mean_iou']['mean']:.4f}")
    example = segment_example(out / "example", config.examples) if config.example else None
    return {"summary": summary, "out_dir": str(out), "example": example}
