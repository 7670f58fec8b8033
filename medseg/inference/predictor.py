"""A trained network applied to one image: the bundle's pre-processing, MONAI's inferers, the input's grid back.

The same functions build the pieces for ``medseg infer`` and for the bundles' ``inference.json``:

- :func:`preprocessing`: the task's image path (:mod:`medseg.tasks`), exactly the transforms training used
  (2D tasks resize to the bundle's image size; volumes keep theirs);
- :func:`inferer`: MONAI's ``SlidingWindowInferer`` with the bundle's region of interest, or its
  ``SliceInferer`` (the same, slice by slice and batched) when a 2D network segments a volume, so that any
  image size works; averaged over flipped copies (:class:`medseg.inferers.FlipAveragingInferer`) when the bundle
  sets ``test_time_flip_axes``, and over copies moved by a few pixels (:class:`medseg.inferers.ShiftAveragingInferer`)
  when it sets ``test_time_shift``;
- :class:`Predictor`: the network with its checkpoint (``torch.load(..., weights_only=True)``), returning the
  foreground probability on the input's own voxel grid (MONAI's ``Invertd`` undoes the resizing).

The settings (task, its options, network, image size) come from the bundle's ``inference.json``, overridden by
the ``settings.json`` that training writes beside the checkpoint, which describes the network it holds.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.inferers import Inferer, SliceInferer, SlidingWindowInferer
from monai.transforms import Compose, Invertd

from medseg.inferers import FlipAveragingInferer, ShiftAveragingInferer
from medseg.networks import build_network, network_output
from medseg.tasks import get_task

from .postprocess import MaskPostprocessing

__all__ = ["InferenceSettings", "Predictor", "inferer", "preprocessing"]


def preprocessing(task: str, image_size: int, **task_options: Any) -> Compose:
    """The task's image path: resized to ``image_size`` for 2D tasks, at native size for volumes."""
    record = get_task(task)
    return record.image_transforms(None if record.volumetric else (image_size, image_size), **task_options)


def inferer(
    task: str,
    image_size: int,
    sw_batch_size: int = 4,
    progress: bool = False,
    flip_axes: Sequence[int] = (),
    shift: int = 0,
) -> Inferer:
    """MONAI's sliding-window inferer with the ``image_size`` ROI; slice by slice (batched) for volumes; the mean
    over the image and its copies flipped along each of ``flip_axes`` (spatial axes) when any are given; that mean
    over the image and its copies moved by ``±shift`` pixels along each in-plane axis when ``shift`` is not 0."""
    kwargs = {"roi_size": (image_size, image_size), "sw_batch_size": sw_batch_size, "overlap": 0.25}
    if get_task(task).volumetric:
        windows = SliceInferer(spatial_dim=2, progress=progress, **kwargs)
    else:
        windows = SlidingWindowInferer(progress=progress, **kwargs)
    flipped = FlipAveragingInferer(windows, flip_axes) if flip_axes else windows
    return ShiftAveragingInferer(flipped, shift, spatial_axes=(0, 1)) if shift else flipped


_SETTINGS = ("task", "task_options", "network_name", "network_kwargs", "image_size")


@dataclass
class InferenceSettings:
    """What a checkpoint needs to run: its task and options, its network and the image size it was trained at;
    and the bundle's test-time flips and shifts and its mask cleaning (``test_time_flip_axes``,
    ``test_time_shift``, ``keep_largest`` and ``fill_holes`` of its ``inference.json``; none without a bundle)."""

    task: str
    network_name: str
    image_size: int
    task_options: dict = field(default_factory=dict)
    network_kwargs: dict = field(default_factory=dict)
    flip_axes: list[int] = field(default_factory=list)
    shift: int = 0
    keep_largest: int | None = None
    fill_holes: bool = False

    @classmethod
    def from_bundle(cls, bundle: str | Path, checkpoint: str | Path) -> InferenceSettings:
        """The bundle's ``inference.json`` settings, overridden by the checkpoint's ``settings.json``."""
        config = ConfigParser()
        config.read_config(str(Path(bundle) / "configs" / "inference.json"))
        config.update({"bundle_root": str(bundle)})
        given = {name: config.get_parsed_content(name) for name in _SETTINGS}
        given["network_kwargs"] = dict(given["network_kwargs"]).get(given["network_name"], {})
        bundle_only = {
            "flip_axes": [int(axis) for axis in config.get_parsed_content("test_time_flip_axes", default=[])],
            "shift": int(config.get_parsed_content("test_time_shift", default=0)),
            "keep_largest": config.get_parsed_content("keep_largest", default=None) or None,
            "fill_holes": bool(config.get_parsed_content("fill_holes", default=False)),
        }
        return cls(**{**given, **cls._trained(checkpoint)}, **bundle_only)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, **given: Any) -> InferenceSettings:
        """The checkpoint's ``settings.json``, completed by ``given`` (task, network_name, image_size, ...)."""
        trained = cls._trained(checkpoint)
        settings = {**{k: v for k, v in given.items() if v is not None}, **trained}
        missing = [name for name in ("task", "network_name", "image_size") if name not in settings]
        if missing:
            flags = ", ".join("--" + name.replace("_", "-") for name in missing)
            raise ValueError(f"{checkpoint}: no settings.json beside it; give {flags}")
        return cls(**{name: settings[name] for name in _SETTINGS if name in settings})

    def postprocessing(
        self,
        threshold: float | str = 0.5,
        keep_largest: int | None = None,
        min_ratio: float = 0.0,
        fill_holes: bool | None = None,
        clear_border: bool = False,
    ) -> MaskPostprocessing:
        """``medseg infer``'s post-processing: the options given, and the bundle's cleaning for those left
        ``None`` (``keep_largest=0`` keeps every component)."""
        keep = self.keep_largest if keep_largest is None else keep_largest
        fill = self.fill_holes if fill_holes is None else fill_holes
        return MaskPostprocessing(threshold, keep or None, min_ratio, fill, clear_border)

    @staticmethod
    def _trained(checkpoint: str | Path) -> dict:
        path = Path(checkpoint).parent / "settings.json"
        if not path.is_file():
            return {}
        trained = json.loads(path.read_text())
        return {name: trained[name] for name in _SETTINGS if name in trained}


class Predictor:
    """A trained network and its pre-processing: ``predict(path)`` gives the foreground probability map.

    Args:
        settings: the checkpoint's settings.
        checkpoint: a state dict saved with ``torch.save`` (the bundles' ``models/model.pt``).
        device: ``"cpu"`` or ``"cuda"``.
        amp: automatic mixed precision (CUDA only).
        batch_size: windows (or slices) per forward pass.
    """

    def __init__(
        self,
        settings: InferenceSettings,
        checkpoint: str | Path,
        device: str = "cpu",
        amp: bool = False,
        batch_size: int = 4,
    ) -> None:
        self.settings, self.device = settings, torch.device(device)
        self.amp = amp and self.device.type == "cuda"
        record = get_task(settings.task)
        self.volumetric = record.volumetric
        self.preprocessing = preprocessing(settings.task, settings.image_size, **settings.task_options)
        in_channels = record.channels(**settings.task_options)
        network = build_network(settings.network_name, in_channels, **settings.network_kwargs)
        self.network = network.to(self.device).eval()
        state = torch.load(checkpoint, map_location=self.device, weights_only=True)
        self.network.load_state_dict(state)
        self.output = network_output(settings.network_name)
        self.batch_size = batch_size
        self._invert = Invertd("pred", transform=self.preprocessing, orig_keys="image", nearest_interp=False)

    def load(self, path: str | Path) -> dict:
        """The pre-processed image of ``path`` (a file, or a folder holding one DICOM series)."""
        return self.preprocessing({"image": str(path)})

    def native_image(self, path: str | Path) -> torch.Tensor:
        """The image of ``path`` with the task's intensity pre-processing but its own size (for overlays)."""
        record = get_task(self.settings.task)
        return record.image_transforms(None, **self.settings.task_options)({"image": str(path)})["image"]

    def predict(self, item: Mapping, progress: bool = False) -> torch.Tensor:
        """The foreground probability ``(1, *spatial)`` of a pre-processed item, on the input's voxel grid."""
        image = item["image"]
        settings = self.settings
        run = inferer(settings.task, settings.image_size, self.batch_size, progress, settings.flip_axes, settings.shift)
        autocast = torch.autocast("cuda") if self.amp else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            raw = run(image[None].to(self.device), self.network)[0].float().cpu()
        probabilities = torch.sigmoid(raw) if self.output == "logits" else raw.clamp(0, 1)
        pred = MetaTensor(probabilities, meta=dict(image.meta))
        if self.volumetric:  # volumes keep their grid: nothing to invert
            return pred
        return self._invert({"image": image, "pred": pred})["pred"]
