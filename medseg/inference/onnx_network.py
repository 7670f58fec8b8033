"""A network exported to ONNX, run by ONNX Runtime behind the interface of a PyTorch module.

:class:`OnnxNetwork` is an ``nn.Module`` without parameters whose ``forward`` hands the batch to an
``onnxruntime.InferenceSession``: MONAI's inferers (sliding windows, slices, the test-time flips and shifts) and
``SupervisedEvaluator`` call it as they call the PyTorch network, so that the whole pipeline stays the model's own
(:mod:`medseg.pipeline`) and only the forward pass changes runtime. The file carries the settings stamp of the
model it was exported from (:func:`medseg.export.export_onnx`), checked against the ``settings.json`` beside it,
as a PyTorch checkpoint's is.

An export carries its own proof of identity, three metadata properties (:data:`IDENTITY_KEYS`): the settings stamp,
the SHA-256 of the ``model.pt`` it was exported from, and the SHA-256 of its own graph (operators and weights,
metadata aside). :meth:`OnnxNetwork.check_origin` refuses a file without them (stripped, or written by another
tool), one whose graph was edited after the export, one without its ``model.pt`` beside it, and one exported from
other weights: an ONNX file alone cannot show which model it is, so it never runs alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medseg.files import content_digest
from medseg.pipeline import STAMP_KEY, ModelSettings

from .checkpoint import CheckpointError

__all__ = [
    "GRAPH_KEY",
    "IDENTITY_KEYS",
    "ONNX_FILE",
    "ONNX_INT8_FILE",
    "QUANTIZED_KEY",
    "WEIGHTS_KEY",
    "OnnxModelError",
    "OnnxNetwork",
    "graph_digest",
    "stamp_graph",
]

#: The exported network beside a model's ``settings.json``.
ONNX_FILE = "model.onnx"
#: Its 8-bit quantized copy, where one is kept (shipped models, :func:`medseg.export.quantize_onnx`).
ONNX_INT8_FILE = "model.int8.onnx"
#: The metadata key a quantized ONNX file carries (how it was quantized), which tells its runtime apart.
QUANTIZED_KEY = "medseg:quantized"
#: The metadata key of the SHA-256 of the ``model.pt`` an ONNX file was exported from.
WEIGHTS_KEY = "medseg:weights_sha256"
#: The metadata key of the SHA-256 of the file's own graph (:func:`graph_digest`).
GRAPH_KEY = "medseg:graph_sha256"
#: What an export must carry to be run: the settings stamp, the weights' digest and the graph's digest.
IDENTITY_KEYS = (STAMP_KEY, WEIGHTS_KEY, GRAPH_KEY)
#: How to write an export that carries them.
EXPORT_AGAIN = "export it again with `medseg export --model-dir DIR --format onnx`"


def graph_digest(model: Any) -> str:
    """The SHA-256 of an ONNX ``ModelProto``'s graph (its operators, weights, inputs and outputs; not the model's
    metadata, which holds the digest), serialized deterministically."""
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


def stamp_graph(model: Any) -> Any:
    """Record :func:`graph_digest` in an ONNX ``ModelProto``'s metadata (:data:`GRAPH_KEY`, replacing an earlier
    one); return the model. Every writer of an export calls it last, after its graph is final."""
    kept = [(entry.key, entry.value) for entry in model.metadata_props if entry.key != GRAPH_KEY]
    del model.metadata_props[:]
    for key, value in [*kept, (GRAPH_KEY, graph_digest(model))]:
        model.metadata_props.add(key=key, value=value)
    return model


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
    def quantized(self) -> bool:
        """Whether the file is an 8-bit quantized copy of the network (:data:`QUANTIZED_KEY`)."""
        return QUANTIZED_KEY in self.metadata

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

    def check_origin(self, weights: str | Path) -> None:
        """Refuse the file unless it proves its identity (:data:`IDENTITY_KEYS`): it carries the stamps, its graph
        is the one it was exported with, and ``weights`` (the ``model.pt`` beside it) exists and is the file it was
        exported from. The settings stamp itself is checked against the model's record by :meth:`check`.

        Raises:
            OnnxModelError: one line naming the file and what is wrong.
        """
        import onnx

        metadata = self.metadata
        missing = [key for key in IDENTITY_KEYS if not metadata.get(key)]
        if missing:
            raise OnnxModelError(
                f"{self.path}: carries no {', '.join(missing)} (stripped, or not written by medseg export): it "
                f"cannot show which model it is; {EXPORT_AGAIN}"
            )
        if graph_digest(onnx.load(str(self.path), load_external_data=False)) != metadata[GRAPH_KEY]:
            raise OnnxModelError(
                f"{self.path}: its graph (operators and weights) is not the one it was exported with (edited since?); "
                f"{EXPORT_AGAIN}"
            )
        weights = Path(weights)
        if not weights.is_file():
            raise OnnxModelError(
                f"{weights}: missing: an ONNX export runs only beside the weights it was exported from, whose SHA-256 "
                f"{self.path.name} carries; keep models/model.pt with it"
            )
        if content_digest(weights) != metadata[WEIGHTS_KEY]:
            raise OnnxModelError(f"{self.path}: exported from other weights than {weights} (retrained since?); "
                                 f"{EXPORT_AGAIN}")  # fmt: skip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32)
        (output,) = self.session.run(None, {self.input_name: batch})
        return torch.from_numpy(output).to(image.device)
