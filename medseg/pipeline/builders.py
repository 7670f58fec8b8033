"""The network and the pipeline of a model, built from its :class:`~medseg.pipeline.ModelSettings`.

Training, validation, evaluation, a bundle's ``inference.json`` and ``medseg infer`` all build their pieces here,
so that the same settings give the same network, pre-processing, inferer and post-processing on every path:

- :func:`build_network`: the registered network for the task's input channels, any input size;
- :func:`preprocessing`: the task's image path (and label path, for training and evaluation); 2D images resized
  to ``spatial_size``, volumes at their own size; training's augmentation after the cached part;
- :func:`inferer`: MONAI's ``SlidingWindowInferer`` with ``spatial_size`` as region of interest, or its
  ``SliceInferer`` (the same, slice by slice, batched) for volumes, averaged over the test-time flips
  (:class:`medseg.inferers.FlipAveragingInferer`) and shifts (:class:`medseg.inferers.ShiftAveragingInferer`);
- :func:`postprocessing` (the engines' ``pred``) and :func:`mask_postprocessing` (a probability map): threshold,
  then the mask cleaning the model records.
"""

from __future__ import annotations

from typing import Any

from monai.inferers import Inferer, SliceInferer, SlidingWindowInferer
from monai.transforms import Compose
from torch import nn

from medseg.inferers import FlipAveragingInferer, ShiftAveragingInferer
from medseg.networks import get_network
from medseg.tasks import get_task
from medseg.transforms import (
    CleanMaskd,
    MaskPostprocessing,
    UntrackedCompose,
    binary_postprocessing,
    label_postprocessing,
)

from .settings import ModelSettings

__all__ = ["build_network", "inferer", "mask_postprocessing", "postprocessing", "preprocessing"]

#: Overlap of neighbouring sliding windows (only images larger than ``spatial_size`` have several).
WINDOW_OVERLAP = 0.25


def build_network(settings: ModelSettings) -> nn.Module:
    """The registered network of ``settings`` for its input channels, taking any input size."""
    outputs = {"out_channels": settings.out_channels} if settings.out_channels > 1 else {}
    return get_network(
        settings.network_name, in_channels=settings.in_channels, pad_input=True, **outputs, **settings.network_kwargs
    )


def preprocessing(settings: ModelSettings, with_label: bool = False, augmentation: Any = None) -> Compose:
    """The task's pipeline for ``{"image"}`` (or ``{"image", "label"}`` pairs), then ``augmentation`` (a transform
    or a list of transforms) if any.

    2D images are resized to ``spatial_size``; volumes keep their grid (a 2D network sees their axial slices).
    MONAI's ``CacheDataset`` caches everything before the first random transform, so loading and pre-processing
    run once per image and only the augmentation runs every epoch. The augmentation runs untracked
    (:class:`medseg.transforms.UntrackedCompose`): training batches are plain tensors, without the cost of MONAI's
    metadata, which only validation and inference need. The pipeline is flat: ``CacheDataset`` takes a nested
    ``Compose`` (randomizable as a whole) for a random transform and would cache nothing.
    """
    task = get_task(settings.task)
    size = None if task.volumetric else settings.spatial_size
    if with_label:
        steps = [task.pair_transforms(size, settings.labels, **settings.task_options)]
    else:
        steps = [task.image_transforms(size, **settings.task_options)]
    if augmentation:  # a list of transforms, or one (a Compose)
        steps.append(UntrackedCompose([Compose(augmentation) if isinstance(augmentation, list) else augmentation]))
    return Compose(steps).flatten()


def inferer(
    settings: ModelSettings,
    sw_batch_size: int = 4,
    test_time_shift: bool = True,
    volume: bool | None = None,
    progress: bool = False,
) -> Inferer:
    """The model's inferer: sliding windows of ``spatial_size`` (slice by slice for a volume), averaged over its
    test-time flips and, with ``test_time_shift``, its test-time shifts.

    Args:
        sw_batch_size: windows (or slices) per forward pass.
        test_time_shift: apply the recorded shifts (evaluation, inference); validation during training leaves them
            out, since they multiply its cost.
        volume: whether the inputs are volumes; default: whether the task's images are (``False`` for the axial
            slices a volumetric task validates on).
        progress: MONAI's progress bar over the windows or slices.
    """
    kwargs = {"roi_size": settings.spatial_size, "sw_batch_size": sw_batch_size, "overlap": WINDOW_OVERLAP}
    if settings.volumetric if volume is None else volume:
        windows: Inferer = SliceInferer(spatial_dim=2, progress=progress, **kwargs)
    else:
        windows = SlidingWindowInferer(progress=progress, **kwargs)
    if settings.test_time_flip_axes:
        windows = FlipAveragingInferer(windows, settings.test_time_flip_axes)
    if test_time_shift and settings.test_time_shift:
        windows = ShiftAveragingInferer(windows, settings.test_time_shift, spatial_axes=(0, 1))
    return windows


def postprocessing(settings: ModelSettings, probability_key: str | None = None) -> Compose:
    """The engines' ``pred`` to the model's mask: sigmoid (for logits), threshold (several labels: softmax, then
    one-hot masks of the label of highest probability), then its cleaning
    (:class:`medseg.transforms.CleanMaskd`, what :func:`mask_postprocessing` does for ``medseg infer``);
    ``probability_key``: the probabilities also kept under this key (the evaluation's calibration error)."""
    if settings.threshold == "otsu":
        raise ValueError("the bundles threshold at a fixed probability; Otsu's threshold is medseg infer's")
    several = settings.out_channels > 1
    if several:
        masks = label_postprocessing(len(settings.labels), probability_key)
    else:
        masks = binary_postprocessing(settings.threshold, settings.network_output, probability_key)
    if not settings.keep_largest and not settings.fill_holes:
        return masks
    cleaning = CleanMaskd("pred", keep_largest=settings.keep_largest, fill_holes=settings.fill_holes, one_hot=several)
    return Compose([masks, cleaning])


def mask_postprocessing(
    settings: ModelSettings, min_ratio: float = 0.0, clear_border: bool = False
) -> MaskPostprocessing:
    """A probability map to the model's mask (``medseg infer``): its threshold and cleaning, and optionally
    SegCaps' ratio for a second component and the removal of what touches the border."""
    return MaskPostprocessing(settings.threshold, settings.keep_largest, min_ratio, settings.fill_holes, clear_border)
