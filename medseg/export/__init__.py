"""Trained models in formats that travel: the network as ONNX beside the record of its pipeline.

- :mod:`medseg.export.onnx`: :func:`export_onnx`, ``medseg export --format onnx``.
"""

from .onnx import WEIGHTS_KEY, ExportError, OnnxExport, check_exported_from, export_onnx

__all__ = ["WEIGHTS_KEY", "ExportError", "OnnxExport", "check_exported_from", "export_onnx"]
