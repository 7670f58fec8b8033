"""Inference on real scans: DICOM series, NIfTI/NRRD/MHA volumes, radiographs and photos in; masks out.

``medseg infer`` and ``scripts/infer.py`` run :func:`run_inference` with a :class:`Predictor`, whose network and
pipeline come from the checkpoint's record (:class:`medseg.pipeline.ModelSettings`), as a bundle's
``inference.json`` builds them.
"""

from .cases import Case, InputError, dicom_series_groups, find_cases
from .outputs import Geometry, write_dicom_seg, write_image, write_overlay
from .predictor import Predictor
from .runner import InferenceOptions, run_inference

__all__ = [
    "Case",
    "Geometry",
    "InferenceOptions",
    "InputError",
    "Predictor",
    "dicom_series_groups",
    "find_cases",
    "run_inference",
    "write_dicom_seg",
    "write_image",
    "write_overlay",
]
