"""The loss comparison's figures: box plots per loss, learning curves, and the same test cases segmented by each loss.

Written by :func:`medseg.apps.compare.write_results` into the comparison's folder, through
:func:`medseg.files.atomic_path`: ``boxplots_<network>.png``, ``learning_curves_<network>.png`` and
``cases_<network>.png`` (the first test cases of fold 0, one row each: the image with its ground truth, then the
prediction of each loss's fold-0 model of the first seed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medseg.data import fold_datalists
from medseg.files import atomic_path

from .spec import Comparison, Run
from .statistics import fold_means

__all__ = ["write_plots"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=100)
    _pyplot().close(fig)


def _boxplots(network: str, metrics: dict, losses: Sequence[str], out: Path) -> None:
    plt = _pyplot()
    shown = [m for m in ("test_mean_dice", "test_mean_iou", "test_kappa") if m in metrics]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 4), squeeze=False)
    for axis, metric in zip(axes[0], shown):
        names = [loss for loss in losses if loss in metrics[metric]]
        axis.boxplot([list(metrics[metric][loss].values()) for loss in names], tick_labels=names)
        axis.set_title(metric.removeprefix("test_").replace("_", " ") + " over the folds (seeds averaged)")
        axis.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    _save(fig, out / f"boxplots_{network}.png")


def _learning_curves(comparison: Comparison, network: str, records: Sequence[dict]) -> None:
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4.5))
    for loss in comparison.losses:
        curves = []
        for record in records:
            if record["status"] == "ok" and record["network"] == network and record["loss"] == loss:
                history = json.loads((Run.of(record).folder(comparison.out) / "history.json").read_text())
                curves.append([row.get("val_mean_dice", np.nan) for row in history])
        if curves:
            length = max(len(c) for c in curves)
            padded = np.array([c + [np.nan] * (length - len(c)) for c in curves])
            axis.plot(np.arange(1, length + 1), np.nanmean(padded, axis=0), label=loss)
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation Dice (mean over folds and seeds)")
    axis.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, comparison.out / f"learning_curves_{network}.png")


def _plane(array: np.ndarray) -> np.ndarray:
    """The displayed plane of an (x, y[, z]) array: (row, column), the middle axial slice of a volume."""
    return (array[..., array.shape[-1] // 2] if array.ndim == 3 else array).T


def _cases(comparison: Comparison, network: str, cases: int = 3) -> None:
    from medseg.inference import Predictor, model_settings
    from medseg.tasks import get_task

    models = {}
    for loss in comparison.losses:
        checkpoint = Run(network, loss, 0, comparison.seeds[0]).folder(comparison.out) / "models" / "model.pt"
        if checkpoint.is_file():
            models[loss] = Predictor(model_settings(checkpoint), checkpoint)
    if not models:
        return
    settings = next(iter(models.values())).settings
    entries = fold_datalists(comparison.datalist, 0)["test"][:cases]
    labels = get_task(settings.task).label_transforms(None, **settings.task_options)
    plt = _pyplot()
    fig, axes = plt.subplots(len(entries), len(models) + 1, figsize=(2.6 * (len(models) + 1), 2.6 * len(entries)),
                             squeeze=False)  # fmt: skip
    for row, entry in zip(axes, entries):
        truth = _plane(np.asarray(labels({"label": entry["label"]})["label"][0]))
        first = next(iter(models.values()))
        image = np.asarray(first.native_image(entry["image"]))
        picture = _plane(image[0])
        for axis, (title, prediction) in zip(row, [("image, ground truth", None), *models.items()]):
            axis.imshow(picture, cmap="gray")
            axis.contour(truth, levels=[0.5], colors="lime", linewidths=0.8)
            if prediction is not None:
                probabilities = prediction.predict(prediction.load(entry["image"]))[0].numpy()
                axis.contour(_plane(probabilities > 0.5), levels=[0.5], colors="red", linewidths=0.8)
            axis.set_title(title, fontsize=8)
            axis.set_axis_off()
    fig.suptitle(f"{network}, fold 0 test cases: ground truth (green), each loss's prediction (red)", fontsize=9)
    fig.tight_layout()
    _save(fig, comparison.out / f"cases_{network}.png")


def write_plots(comparison: Comparison, records: Sequence[dict]) -> None:
    """Every figure of the comparison, for each network with finished runs."""
    for network, metrics in fold_means(records).items():
        _boxplots(network, metrics, comparison.losses, comparison.out)
        _learning_curves(comparison, network, records)
        _cases(comparison, network)
