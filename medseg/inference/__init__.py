"""Inference on real scans: DICOM series, NIfTI/NRRD/MHA volumes, radiographs and photos in; masks out.

``medseg infer`` and ``scripts/infer.py`` run :func:`run_inference`; the bundles' ``inference.json`` builds its
pre-processing and inferer with the same :func:`preprocessing` and :func:`inferer`.
"""

from .cases import Case, InputError, dicom_series_groups, find_cases
from .outputs import Geometry, write_dicom_seg, write_image, write_overlay
from .postprocess import MaskPostprocessing, clear_inplane_border, keep_largest_components
from .predictor import InferenceSettings, Predictor, inferer, preprocessing
from .runner import InferenceOptions, run_inference

__all__ = [
    "Case",
    "Geometry",
    "InferenceOptions",
    "InferenceSettings",
    "InputError",
    "MaskPostprocessing",
    "Predictor",
    "clear_inplane_border",
    "dicom_series_groups",
    "find_cases",
    "inferer",
    "keep_largest_components",
    "preprocessing",
    "run_inference",
    "write_dicom_seg",
    "write_image",
    "write_overlay",
]
