"""A trained network applied to one image: its settings' pre-processing and inferer, the input's grid back.

:class:`Predictor` holds the network of a checkpoint (``torch.load(..., weights_only=True)``) and the pipeline its
:class:`~medseg.pipeline.ModelSettings` give (:mod:`medseg.pipeline.builders`, the same pieces a bundle's
validation, evaluation and ``inference.json`` use), and returns the foreground probability on the input's own voxel
grid (MONAI's ``Invertd`` undoes the resizing of 2D images; volumes keep their grid).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import torch
from monai.data import MetaTensor
from monai.transforms import Invertd

from medseg.pipeline import ModelSettings, build_network, inferer, preprocessing
from medseg.tasks import get_task

__all__ = ["Predictor"]


class Predictor:
    """A trained network and its pipeline: ``predict(load(path))`` gives the foreground probability map.

    Args:
        settings: the checkpoint's settings (its record, :meth:`ModelSettings.load`).
        checkpoint: a state dict saved with ``torch.save`` (the bundles' ``models/model.pt``).
        device: ``"cpu"`` or ``"cuda"``.
        amp: automatic mixed precision (CUDA only).
        batch_size: windows (or slices) per forward pass.
    """

    def __init__(
        self,
        settings: ModelSettings,
        checkpoint: str | Path,
        device: str = "cpu",
        amp: bool = False,
        batch_size: int = 4,
    ) -> None:
        self.settings, self.device = settings, torch.device(device)
        self.amp = amp and self.device.type == "cuda"
        self.volumetric = settings.volumetric
        self.preprocessing = preprocessing(settings)
        self.network = build_network(settings).to(self.device).eval()
        state = torch.load(checkpoint, map_location=self.device, weights_only=True)
        self.network.load_state_dict(state)
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
        run = inferer(self.settings, sw_batch_size=self.batch_size, progress=progress)
        autocast = torch.autocast("cuda") if self.amp else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            raw = run(image[None].to(self.device), self.network)[0].float().cpu()
        probabilities = torch.sigmoid(raw) if self.settings.network_output == "logits" else raw.clamp(0, 1)
        pred = MetaTensor(probabilities, meta=dict(image.meta))
        if self.volumetric:  # volumes keep their grid: nothing to invert
            return pred
        return self._invert({"image": image, "pred": pred})["pred"]
