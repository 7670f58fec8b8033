"""Trained models in formats that travel: the network as ONNX beside the record of its pipeline, smaller files.

- :mod:`medseg.export.onnx`: :func:`export_onnx`, ``medseg export --format onnx``.
- :mod:`medseg.export.precision`: weights stored in half precision (a checkpoint's, an ONNX file's), computing in
  single precision.
- :mod:`medseg.export.quantize`: an ONNX export quantized to 8 bits with ONNX Runtime's own tools.
"""

from .onnx import WEIGHTS_KEY, ExportError, OnnxExport, check_exported_from, export_onnx
from .precision import half_precision_checkpoint, half_precision_initializers
from .quantize import QUANTIZATION, calibration_batches, quantize_onnx

__all__ = [
    "QUANTIZATION",
    "WEIGHTS_KEY",
    "ExportError",
    "OnnxExport",
    "calibration_batches",
    "check_exported_from",
    "export_onnx",
    "half_precision_checkpoint",
    "half_precision_initializers",
    "quantize_onnx",
]
