"""The papers' evaluation metrics on MONAI's metric and handler API.

Dice, IoU and the 95 % Hausdorff distance are MONAI's (``MeanDice``, ``MeanIoUHandler``,
``HausdorffDistance(percentile=95)``). MONAI has no Cohen's kappa, which the kappa-loss report and the
comparison runner use, and its ``ConfusionMatrix`` handler keeps the confusion counts, not the per-image
accuracy, as details (which ``MetricsSaver``'s per-case report cannot write). :class:`ConfusionScoreMetric`
extends MONAI's ``CumulativeIterationMetric`` with a per-image score of MONAI's own confusion counts
(:func:`monai.metrics.get_confusion_matrix`): :class:`CohenKappaMetric` and :class:`PixelAccuracyMetric`, with
their Ignite handlers :class:`CohenKappa` and :class:`PixelAccuracy`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from monai.handlers import CalibrationError, HausdorffDistance, IgniteMetricHandler, MeanIoUHandler, from_engine
from monai.metrics import CumulativeIterationMetric, get_confusion_matrix
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

__all__ = [
    "METRIC_NAMES",
    "CohenKappa",
    "CohenKappaMetric",
    "ConfusionScoreMetric",
    "PixelAccuracy",
    "PixelAccuracyMetric",
    "all_foreground_dice",
    "cohen_kappa",
    "pixel_accuracy",
    "segmentation_metrics",
]

#: The metrics every bundle reports, by the suffix of their engine name (``val_mean_dice``, ``test_kappa``, ...).
METRIC_NAMES = ("mean_dice", "mean_iou", "kappa", "accuracy", "hd95")


def cohen_kappa(confusion: torch.Tensor) -> torch.Tensor:
    """Cohen's kappa from confusion counts ``(..., 4)`` ordered TP, FP, TN, FN (MONAI's order).

    ``κ = (p_o − p_c) / (1 − p_c) = 2(TP·TN − FP·FN) / ((TP + FP)(FP + TN) + (TP + FN)(FN + TN))``, the form
    that needs no division by N. When every pixel of prediction and ground truth is one class, kappa is
    undefined (0/0) and NaN is returned, which MONAI's reductions leave out.
    """
    tp, fp, tn, fn = confusion.double().unbind(-1)
    numerator = 2 * (tp * tn - fp * fn)
    denominator = (tp + fp) * (fp + tn) + (tp + fn) * (fn + tn)
    kappa = numerator / denominator
    return torch.where(denominator > 0, kappa, torch.full_like(kappa, float("nan"))).float()


def pixel_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """``(TP + TN) / N`` from confusion counts ``(..., 4)`` ordered TP, FP, TN, FN."""
    tp, fp, tn, fn = confusion.double().unbind(-1)
    return ((tp + tn) / (tp + fp + tn + fn)).float()


class ConfusionScoreMetric(CumulativeIterationMetric):
    """A score of the confusion counts of binarized predictions and labels, per image and channel, then reduced.

    Subclasses set :attr:`score` (confusion counts ``(..., 4)`` -> values ``(...)``).

    Args:
        include_background: whether to include the first channel.
        reduction: MONAI's metric reduction over the not-NaN values (default the mean).
        get_not_nans: also return the number of not-NaN values.
    """

    score: Callable[[torch.Tensor], torch.Tensor]

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__()
        self.include_background, self.reduction, self.get_not_nans = include_background, reduction, get_not_nans

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return type(self).score(get_confusion_matrix(y_pred, y, include_background=self.include_background))

    def aggregate(self, reduction: MetricReduction | str | None = None):  # type: ignore[override]
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"the data to aggregate must be a PyTorch Tensor, got {type(data)}.")
        value, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (value, not_nans) if self.get_not_nans else value


class PixelAccuracyMetric(ConfusionScoreMetric):
    """Pixel accuracy per image: ``(TP + TN) / N`` of each channel of binary masks (:func:`pixel_accuracy`); of
    one-hot masks of several labels with ``include_background`` (the background channel first), the share of pixels
    whose label is right, one value per image (the accuracy "over the classes" of face parsing)."""

    score = staticmethod(pixel_accuracy)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if y_pred.shape[1] == 1 or not self.include_background:
            return super()._compute_tensor(y_pred, y)
        right = (y_pred.argmax(dim=1) == y.argmax(dim=1)).flatten(1).float()
        return right.mean(dim=1, keepdim=True)


class CohenKappaMetric(ConfusionScoreMetric):
    """Cohen's kappa (:func:`cohen_kappa`) per image and channel."""

    score = staticmethod(cohen_kappa)


class _ConfusionScoreHandler(IgniteMetricHandler):
    metric_class: type[ConfusionScoreMetric]

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        metric_fn = self.metric_class(include_background=include_background, reduction=reduction)
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)


class CohenKappa(_ConfusionScoreHandler):
    """Ignite handler of :class:`CohenKappaMetric`, the counterpart of MONAI's ``MeanDice``."""

    metric_class = CohenKappaMetric


class PixelAccuracy(_ConfusionScoreHandler):
    """Ignite handler of :class:`PixelAccuracyMetric`."""

    metric_class = PixelAccuracyMetric


def segmentation_metrics(
    prefix: str = "val",
    include_hd95: bool = True,
    probability_key: str | None = None,
    num_bins: int = 20,
    include_background: bool = True,
) -> dict[str, IgniteMetricHandler]:
    """IoU, Cohen's kappa, pixel accuracy and 95 % Hausdorff distance handlers, named ``<prefix>_<metric>``.

    The additional metrics of every bundle's evaluator, beside the key metric ``<prefix>_mean_dice``. Each
    reads ``pred`` and ``label`` (binary masks) from the engine's output and saves its per-image values in
    ``engine.state.metric_details`` (for MONAI's ``MetricsSaver``). The Hausdorff distance is in pixels (or
    voxels) of the evaluated grid.

    With ``probability_key`` (where :func:`medseg.pipeline.postprocessing` kept the probabilities), also
    ``<prefix>_ece``: MONAI's ``CalibrationError``, the expected calibration error of Guo et al. (2017) per
    image, ``ECE = Σ_b (n_b / N) |acc_b − conf_b|`` over ``num_bins`` equal-width bins of the foreground
    probability, then averaged over the images.

    ``include_background=False``: one-hot masks of several labels (background first), each metric per label (its
    mean over the labels), but the pixel accuracy, which is over all the classes.
    """
    pairs = from_engine(["pred", "label"])
    labels = {"include_background": include_background}
    metrics: dict[str, IgniteMetricHandler] = {
        f"{prefix}_mean_iou": MeanIoUHandler(output_transform=pairs, **labels),
        f"{prefix}_kappa": CohenKappa(output_transform=pairs, **labels),
        f"{prefix}_accuracy": PixelAccuracy(output_transform=pairs),
    }
    if include_hd95:
        metrics[f"{prefix}_hd95"] = HausdorffDistance(percentile=95, output_transform=pairs, **labels)
    if probability_key:
        probabilities = from_engine([probability_key, "label"])
        metrics[f"{prefix}_ece"] = CalibrationError(num_bins=num_bins, output_transform=probabilities, **labels)
    return metrics


def all_foreground_dice(dataset: Sequence[Mapping], label_key: str = "label") -> float:
    """Mean Dice of the trivial predictor that calls every pixel foreground: ``2|G| / (N + |G|)`` per item (one-hot
    masks of several labels: per label, every pixel that label)."""
    scores = []
    for item in dataset:
        label = torch.as_tensor(item[label_key]) > 0
        for channel in label[1:] if label.shape[0] > 1 else label:
            foreground = float(channel.sum())
            scores.append(2 * foreground / (channel.numel() + foreground))
    return float(np.mean(scores)) if scores else float("nan")
