"""Inference on real scans: DICOM series, NIfTI/NRRD/MHA volumes, radiographs and photos in; masks out.

``medseg infer`` runs :func:`run_inference` with a :class:`Predictor`, whose network and pipeline come from the
record its model file carries (:func:`model_settings`, :class:`medseg.pipeline.ModelSettings`), as a bundle's
``inference.json`` builds them.
"""

from .cases import Case, InputError, dicom_series_groups, find_cases, unique_names
from .checkpoint import (
    HALF_DTYPES,
    CheckpointError,
    load_weights,
    model_settings,
    read_stamp,
    read_state_dict,
    recorded_settings,
)
from .onnx_network import (
    GRAPH_KEY,
    IDENTITY_KEYS,
    ONNX_FILE,
    ONNX_INT8_FILE,
    QUANTIZED_KEY,
    WEIGHTS_KEY,
    OnnxModelError,
    OnnxNetwork,
)
from .outputs import Geometry, write_dicom_seg, write_image, write_overlay, write_rtstruct
from .predictor import MODEL_FILE, RUNTIMES, Predictor, load_network
from .runner import InferenceOptions, run_inference
from .uncertainty import UncertaintySummary, binary_entropy, border_band, uncertainty_summary

__all__ = [
    "GRAPH_KEY",
    "HALF_DTYPES",
    "IDENTITY_KEYS",
    "MODEL_FILE",
    "ONNX_FILE",
    "ONNX_INT8_FILE",
    "QUANTIZED_KEY",
    "RUNTIMES",
    "WEIGHTS_KEY",
    "Case",
    "CheckpointError",
    "Geometry",
    "InferenceOptions",
    "InputError",
    "OnnxModelError",
    "OnnxNetwork",
    "Predictor",
    "UncertaintySummary",
    "binary_entropy",
    "border_band",
    "dicom_series_groups",
    "find_cases",
    "load_network",
    "load_weights",
    "model_settings",
    "read_stamp",
    "read_state_dict",
    "recorded_settings",
    "run_inference",
    "uncertainty_summary",
    "unique_names",
    "write_dicom_seg",
    "write_image",
    "write_overlay",
    "write_rtstruct",
]
