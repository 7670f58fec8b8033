"""A trained model's settings and the network and pipeline built from them, for every path that trains or applies it.

- :mod:`medseg.pipeline.settings`: :class:`ModelSettings`, what a trained model records (in its model file);
- :mod:`medseg.pipeline.builders`: the network, pre-processing, inferer and post-processing of those settings.
"""

from .builders import build_network, inferer, mask_postprocessing, postprocessing, preprocessing
from .settings import (
    APPLICATION_FIELDS,
    MODEL_FIELDS,
    SETTINGS_FILE,
    STAMP_KEY,
    ModelSettings,
    SettingsError,
    SettingsFileError,
    check_flag,
    checkpoint_stamp,
)

__all__ = [
    "APPLICATION_FIELDS",
    "MODEL_FIELDS",
    "SETTINGS_FILE",
    "STAMP_KEY",
    "ModelSettings",
    "SettingsError",
    "SettingsFileError",
    "build_network",
    "check_flag",
    "checkpoint_stamp",
    "inferer",
    "mask_postprocessing",
    "postprocessing",
    "preprocessing",
]
