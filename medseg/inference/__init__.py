"""Inference on real scans: DICOM series, NIfTI/NRRD/MHA volumes, radiographs and photos in; masks out.

``medseg infer`` and ``scripts/infer.py`` run :func:`run_inference`; the bundles' ``inference.json`` builds its
pre-processing, inferer and mask cleaning with the same :func:`preprocessing`, :func:`inferer` and
:class:`CleanMaskd`.
"""

from .cases import Case, InputError, dicom_series_groups, find_cases
from .outputs import Geometry, write_dicom_seg, write_image, write_overlay
from .postprocess import CleanMaskd, MaskPostprocessing, clear_inplane_border, fill_holes, keep_largest_components
from .predictor import InferenceSettings, Predictor, inferer, preprocessing
from .runner import InferenceOptions, run_inference

__all__ = [
    "Case",
    "CleanMaskd",
    "Geometry",
    "InferenceOptions",
    "InferenceSettings",
    "InputError",
    "MaskPostprocessing",
    "Predictor",
    "clear_inplane_border",
    "dicom_series_groups",
    "fill_holes",
    "find_cases",
    "inferer",
    "keep_largest_components",
    "preprocessing",
    "run_inference",
    "write_dicom_seg",
    "write_image",
    "write_overlay",
]
