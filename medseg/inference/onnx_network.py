"""A network exported to ONNX, run by ONNX Runtime behind the interface of a PyTorch module.

:class:`OnnxNetwork` is an ``nn.Module`` without parameters whose ``forward`` hands the batch to an
``onnxruntime.InferenceSession``: MONAI's inferers (sliding windows, slices, the test-time flips and shifts) and
``SupervisedEvaluator`` call it as they call the PyTorch network, so that the whole pipeline stays the model's own
(:mod:`medseg.pipeline`) and only the forward pass changes runtime. The file carries the settings stamp of the
model it was exported from (:func:`medseg.export.export_onnx`), checked against the ``settings.json`` beside it,
as a PyTorch checkpoint's is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medseg.pipeline import STAMP_KEY, ModelSettings

from .checkpoint import CheckpointError

__all__ = ["ONNX_FILE", "OnnxModelError", "OnnxNetwork"]

#: The exported network beside a model's ``settings.json``.
ONNX_FILE = "model.onnx"


class OnnxModelError(CheckpointError):
    """An ONNX file that cannot run as the model its record describes; the message names the file."""


class OnnxNetwork(nn.Module):
    """The network of an ONNX file, run by ONNX Runtime.

    Args:
        path: the ``.onnx`` file written by :func:`medseg.export.export_onnx`.
        settings: the model's record; when given, a file stamped as another model is refused.
        threads: ONNX Runtime's intra-op threads (default: PyTorch's, so that both runtimes use the same cores).
        providers: ONNX Runtime execution providers (default: the CPU's).

    Raises:
        OnnxModelError: for a missing or unreadable file, or one exported from another model.
    """

    def __init__(
        self,
        path: str | Path,
        settings: ModelSettings | None = None,
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise ImportError("ONNX Runtime is not installed: pip install -e '.[onnx]' (medseg's onnx extra)") from None

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"{self.path}: no such file (export the model with medseg export --format onnx)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only
        # ONNX Runtime's threads busy-wait between the operators of a run (the default; 1.2x faster than
        # sleeping, measured on the U-Net) but stop when the run returns: the pipeline's own work (window
        # aggregation, test-time averaging, inversion) runs on the same cores right after each forward pass
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own classes (Fail, InvalidGraph, NoSuchFile, ...)
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise OnnxModelError(f"{self.path}: not an ONNX model ONNX Runtime can run ({first[:300]})") from None
        self.input_name = self.session.get_inputs()[0].name
        if settings is not None:
            self.check(settings)

    @property
    def metadata(self) -> dict[str, str]:
        """The file's metadata properties (the exporter's stamps, :mod:`medseg.export.onnx`)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def stamp(self) -> dict[str, str] | None:
        """The settings stamp the file carries (:meth:`ModelSettings.stamp`), or ``None``."""
        text = self.metadata.get(STAMP_KEY)
        return json.loads(text) if text else None

    def check(self, settings: ModelSettings) -> None:
        """Refuse a file stamped as another model than ``settings`` (:meth:`ModelSettings.check_recorded_stamp`)."""
        try:
            settings.check_recorded_stamp(self.stamp, self.path)
        except ValueError as error:
            raise OnnxModelError(str(error)) from None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32)
        (output,) = self.session.run(None, {self.input_name: batch})
        return torch.from_numpy(output).to(image.device)
