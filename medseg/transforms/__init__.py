"""MONAI dictionary transforms and per-task pre-processing presets."""

from .augmentation import SEGCAPS_AUGMENTATION, segcaps_augmentation
from .intensity import RandSaltAndPepper, RandSaltAndPepperd, SaltAndPepperd, ToGreyscale, ToGreyscaled
from .io import RadiographReader, image_readers_2d, load_imaged, mask_reader_2d, volume_reader
from .masks import (
    HELEN_CLASSES,
    LFW_CLASSES,
    LFW_COLOURS,
    LUNA16_LABELS,
    ArgmaxToMask,
    ArgmaxToMaskd,
    HelenLabelsToMaskd,
    LFWPartsToMaskd,
    MergeMasks,
    MergeMasksd,
    face_classes,
)
from .presets import (
    HU_RANGE,
    LUNA16_FOREGROUND,
    ct_transforms,
    cxr_transforms,
    face_transforms,
    luna16_label_map,
    luna16_transforms,
)
from .spatial import Rand2DSimardElastic, Rand2DSimardElasticd, affine_from_points

__all__ = [
    "HELEN_CLASSES",
    "HU_RANGE",
    "LFW_CLASSES",
    "LFW_COLOURS",
    "LUNA16_FOREGROUND",
    "LUNA16_LABELS",
    "SEGCAPS_AUGMENTATION",
    "ArgmaxToMask",
    "ArgmaxToMaskd",
    "HelenLabelsToMaskd",
    "LFWPartsToMaskd",
    "MergeMasks",
    "MergeMasksd",
    "RadiographReader",
    "Rand2DSimardElastic",
    "Rand2DSimardElasticd",
    "RandSaltAndPepper",
    "RandSaltAndPepperd",
    "SaltAndPepperd",
    "ToGreyscale",
    "ToGreyscaled",
    "affine_from_points",
    "ct_transforms",
    "cxr_transforms",
    "face_classes",
    "face_transforms",
    "image_readers_2d",
    "load_imaged",
    "luna16_label_map",
    "luna16_transforms",
    "mask_reader_2d",
    "segcaps_augmentation",
    "volume_reader",
]
