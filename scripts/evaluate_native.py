"""IoU and Dice of a 2D bundle's checkpoint at each mask's own resolution, through ``medseg infer``'s path; for a
model of several labels, each label's IoU, their mean and the pixel accuracy over the classes.

A bundle's ``evaluate.json`` scores on the network's grid (e.g. 256x256) against the resized reference masks.
This script scores what a user gets from ``medseg infer --model-dir``: the probabilities mapped back onto the input's
pixels (:class:`medseg.inference.Predictor` with the bundle's settings, MONAI's ``Invertd``), thresholded and
cleaned as ``medseg infer`` does (the bundle's cleaning, or the given flags), against the reference mask read at
its own size. It takes the test subset of the run's datalist and fold, as ``evaluate.json`` does, and prints the
mean and the per-case values.

    python scripts/evaluate_native.py --bundle bundles/cxr_lung_unet --output_dir runs/cxr \
        --dataset_dir ../shared/data/cxr_openist [--keep-largest 0 --fill-holes false]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from monai.metrics import compute_iou
from monai.networks.utils import one_hot

from medseg.bundle import read_config
from medseg.inference import Predictor, model_settings
from medseg.pipeline import mask_postprocessing
from medseg.tasks import get_task


def test_entries(bundle: Path, output_dir: Path, overrides: dict) -> list[dict]:
    """The entries ``evaluate.json`` scores for this run (its datalist, fold and subset)."""
    config = read_config(bundle, "evaluate", output_dir=str(output_dir), **overrides)
    return config.get_parsed_content("validate#dataset#data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--output_dir", type=Path, required=True, help="the training run (models/model.pt)")
    parser.add_argument("--dataset_dir", help="as given to the training run")
    parser.add_argument("--datalist", help="as given to the training run")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--keep-largest", type=int, help="as medseg infer (default: as trained; 0: all)")
    parser.add_argument(
        "--fill-holes", type=lambda text: text.lower() == "true", help="true or false (default: as trained)"
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    overrides = {key: value for key, value in vars(args).items() if key in ("dataset_dir", "datalist", "fold")}
    entries = test_entries(args.bundle.resolve(), args.output_dir.resolve(), overrides)
    checkpoint = args.output_dir / "models" / "model.pt"
    # as `medseg infer --model-dir` applies the model: its record (test-time flips and shifts, cleaning)
    settings = model_settings(checkpoint, keep_largest=args.keep_largest, fill_holes=args.fill_holes)
    predictor = Predictor(settings, checkpoint)
    postprocessing = mask_postprocessing(settings)
    reference = get_task(settings.task).label_transforms(None, settings.labels, **settings.task_options)
    labels = list(settings.labels or ["foreground"])
    scores = [score_case(entry, predictor, postprocessing, reference, labels) for entry in entries]
    print(json.dumps(scores, indent=1))
    print(f"{len(scores)} cases at their own resolution (mean ± sd over the cases):")
    for key in [key for key in scores[0] if key != "case"]:
        values = np.array([score[key] for score in scores])
        print(f"  {key:<20} {values.mean():.4f} ± {values.std():.4f}")


def score_case(entry: dict, predictor: Predictor, postprocessing, reference, labels: list[str]) -> dict:
    """IoU and Dice of one case's mask (one label), or each label's IoU, their mean and the pixel accuracy over the
    classes (several labels: the label maps compared pixel by pixel, background included), at the input's size."""
    probabilities = predictor.predict(predictor.load(entry["image"])).numpy()  # (1 or labels + 1, *spatial)
    truth = np.asarray(reference({"label": entry["label"]})["label"])
    truth = truth.argmax(0) if truth.shape[0] > 1 else truth[0]  # one-hot (several labels) or a binary mask
    if len(labels) == 1:
        predicted = postprocessing(probabilities[0])
    else:
        predicted = postprocessing.label_map(probabilities)
    if predicted.shape != truth.shape:
        raise ValueError(f"{entry['image']}: prediction {predicted.shape} but mask {truth.shape}")
    score = {"case": entry.get("case", entry["image"])}
    classes = len(labels) + 1  # MONAI's IoU per foreground label on one-hot maps; 1 where both are empty
    onehot = [one_hot(torch.as_tensor(m, dtype=torch.long)[None, None], classes) for m in (predicted, truth)]
    per_label = compute_iou(*onehot, include_background=False, ignore_empty=False)[0]
    score.update({f"iou_{label}": float(value) for label, value in zip(labels, per_label, strict=True)})
    if len(labels) == 1:
        score["iou"] = score.pop(f"iou_{labels[0]}")
        score["dice"] = 2 * score["iou"] / (1 + score["iou"])
    else:
        score["mean_iou"] = float(np.mean([score[f"iou_{label}"] for label in labels]))
        score["accuracy"] = float((predicted == truth).mean())
    return score


if __name__ == "__main__":
    main()
