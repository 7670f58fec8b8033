"""A trained network applied to one image: its settings' pre-processing and inferer, the input's grid back.

:class:`Predictor` holds the network of a checkpoint (``torch.load(..., weights_only=True)``, or an exported
``.onnx`` file run by ONNX Runtime, :class:`medseg.inference.OnnxNetwork`) and the pipeline its
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
from medseg.transforms import ImageFileError

from .checkpoint import load_weights
from .onnx_network import ONNX_FILE, ONNX_INT8_FILE

__all__ = ["MODEL_FILE", "RUNTIMES", "Predictor", "load_network"]

#: The trained weights in a model folder's ``models/``.
MODEL_FILE = "model.pt"
#: What can run the forward pass (``medseg infer --runtime``), and the file it runs in a model folder's ``models/``:
#: PyTorch on the weights, ONNX Runtime on their export, or on its 8-bit quantized copy (shipped models only, and
#: only when asked: it gives masks within the Dice its manifest records, not the same ones).
RUNTIMES = {"pytorch": MODEL_FILE, "onnxruntime": ONNX_FILE, "onnxruntime-int8": ONNX_INT8_FILE}


def load_network(
    settings: ModelSettings, model_file: str | Path, device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """The trained network of ``model_file`` in evaluation mode: a PyTorch checkpoint (:func:`load_weights`), or an
    ONNX file (``.onnx``) behind the same interface (:class:`medseg.inference.OnnxNetwork`, on the CPU or, for
    ``"cuda"``, ONNX Runtime's CUDA provider), which must prove it was exported from the ``model.pt`` beside it
    (:meth:`OnnxNetwork.check_origin`).

    Raises:
        CheckpointError: for a file that is not the model ``settings`` describe; for an ONNX file, one without its
            stamps, edited since its export, without its ``model.pt`` or exported from other weights.
    """
    device = torch.device(device)
    if Path(model_file).suffix == ".onnx":
        from .onnx_network import OnnxNetwork

        provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
        onnx_network = OnnxNetwork(model_file, settings, providers=[provider])
        onnx_network.check_origin(Path(model_file).with_name(MODEL_FILE))
        return onnx_network
    network = build_network(settings).to(device).eval()
    load_weights(network, model_file, device, settings)
    return network


class Predictor:
    """A trained network and its pipeline: ``predict(load(path))`` gives the foreground probability map.

    Args:
        settings: the checkpoint's settings (its record, :meth:`ModelSettings.load`).
        checkpoint: a state dict saved with ``torch.save`` (the bundles' ``models/model.pt``), or the network exported
            to ONNX (``models/model.onnx``, :func:`medseg.export.export_onnx`), run by ONNX Runtime.
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
        self.network = load_network(settings, checkpoint, self.device)
        self.model_file = Path(checkpoint)
        self.runtime = "pytorch"
        if self.model_file.suffix == ".onnx":
            self.runtime = "onnxruntime-int8" if getattr(self.network, "quantized", False) else "onnxruntime"
        self.batch_size = batch_size
        self._invert = Invertd("pred", transform=self.preprocessing, orig_keys="image", nearest_interp=False)

    def load(self, path: str | Path) -> dict:
        """The pre-processed image of ``path`` (a file, or a folder holding one DICOM series).

        Raises:
            ImageFileError: when the image is not of the kind the model takes (a 4D NIfTI for a 3D model, a
                two-channel image for a one-channel one), before the network sees it.
        """
        item = self.preprocessing({"image": str(path)})
        shape, dims = tuple(item["image"].shape), 3 if self.volumetric else 2
        if len(shape) != dims + 1 or shape[0] != self.settings.in_channels:
            raise ImageFileError(
                f"{path}: an image of {shape[0]} channel(s) and shape {shape[1:]} where the model takes "
                f"{self.settings.in_channels}-channel {dims}D images (a time series, or another modality?)"
            )
        return item

    def native_image(self, path: str | Path) -> torch.Tensor:
        """The image of ``path`` with the task's intensity pre-processing but its own size (for overlays)."""
        task = get_task(self.settings.task)
        return task.image_transforms(None, **self.settings.task_options)({"image": str(path)})["image"]

    def predict(self, item: Mapping, progress: bool = False) -> torch.Tensor:
        """The foreground probability ``(1, *spatial)`` of a pre-processed item, on the input's voxel grid; for a
        model of several labels, the probability of each, ``(labels + 1, *spatial)``, background first."""
        image = item["image"]
        run = inferer(self.settings, sw_batch_size=self.batch_size, progress=progress)
        autocast = torch.autocast("cuda") if self.amp else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            raw = run(image[None].to(self.device), self.network)[0].float().cpu()
        if self.settings.out_channels > 1:
            probabilities = torch.softmax(raw, dim=0)
        elif self.settings.network_output == "logits":
            probabilities = torch.sigmoid(raw)
        else:
            probabilities = raw.clamp(0, 1)
        pred = MetaTensor(probabilities, meta=dict(image.meta))
        if self.volumetric:  # volumes keep their grid: nothing to invert
            return pred
        return self._invert({"image": image, "pred": pred})["pred"]
