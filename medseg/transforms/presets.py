"""Per-task pre-processing pipelines, shared by training, evaluation, the bundles and the scripts.

Each preset loads a datalist entry (``{"image", "label", ...}``) with explicitly chosen MONAI readers
(:mod:`medseg.transforms.io`), decodes the mask to one binary channel and applies the paper's
pre-processing:

- :func:`ct_transforms` / :func:`luna16_transforms` (SegCaps): Hounsfield units clipped to
  [-1024, 3072] and scaled by ``(x + 1024) / 4096`` to [0, 1], no resampling; LUNA16 lungs (labels 3
  and 4) foreground, trachea (5) background. Volumes come out as (1, x, y, z);
  :class:`medseg.data.SliceDataset` cuts the axial 2D slices.
- :func:`cxr_transforms` (Dubey's chest X-ray study): grey, intensity to [0, 1], resized to
  256x256 by default, masks merged and binarised at half their maximum.
- :func:`face_transforms` (van Beers et al.): 250x250, RGB (FCN paper) or grey (capsule paper),
  face mask with or without hair.

``spatial_size=None`` keeps the native size (``medseg prepare`` validates pairs that way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.transforms import (
    Compose,
    EnsureTyped,
    MapLabelValued,
    Resized,
    ScaleIntensityd,
    ScaleIntensityRanged,
)

from .intensity import ToGreyscaled
from .io import image_readers_2d, load_imaged, mask_reader_2d, volume_reader
from .masks import LUNA16_LABELS, HelenLabelsToMaskd, LFWPartsToMaskd, MergeMasksd

__all__ = [
    "HU_RANGE",
    "LUNA16_FOREGROUND",
    "ct_transforms",
    "cxr_transforms",
    "face_transforms",
    "luna16_label_map",
    "luna16_transforms",
]

#: SegCaps' Hounsfield window: clipped to it, then scaled to [0, 1].
HU_RANGE = (-1024.0, 3072.0)

#: LUNA16 labels that are foreground in SegCaps: the left and right lungs (the trachea is background).
LUNA16_FOREGROUND = (LUNA16_LABELS["left_lung"], LUNA16_LABELS["right_lung"])


def _resize(keys: Sequence[str], spatial_size: Sequence[int] | None) -> list:
    """Area averaging for the image, nearest neighbour for the mask (which stays binary)."""
    return [] if spatial_size is None else [Resized(keys, spatial_size=spatial_size, mode=("area", "nearest"))]


def luna16_label_map(foreground: Sequence[int] = LUNA16_FOREGROUND) -> dict[int, int]:
    """LUNA16 label value -> 0/1: ``{3: 1, 4: 1, 5: 0}`` for the default lungs-only rule."""
    unknown = set(foreground) - set(LUNA16_LABELS.values())
    if unknown:
        raise ValueError(f"LUNA16 foreground labels must be among {LUNA16_LABELS}, got {sorted(unknown)}")
    return {value: int(value in foreground) for value in LUNA16_LABELS.values()}


def ct_transforms(
    label_map: Mapping[int, int] | None = None,
    hu_range: tuple[float, float] = HU_RANGE,
    image_key: str = "image",
    label_key: str = "label",
) -> Compose:
    """CT volume pre-processing: load with ITK, clip Hounsfield units to ``hu_range`` and scale to [0, 1].

    Args:
        label_map: mask value -> 0/1, applied with MONAI's ``MapLabelValued`` (values not listed
            stay as they are). ``None``: the mask is binarised at half its maximum (0/1 or 0/255 masks).
        hu_range: ``(a_min, a_max)``; ``(x - a_min) / (a_max - a_min)`` after clipping.

    Output: image float32 (1, x, y, z), label uint8 (1, x, y, z), both MONAI MetaTensors with the
    file's affine.
    """
    keys = [image_key, label_key]
    a_min, a_max = hu_range
    if label_map is None:
        decode = MergeMasksd(label_key)
    else:
        decode = MapLabelValued(label_key, orig_labels=list(label_map), target_labels=list(label_map.values()))
    return Compose(
        [
            load_imaged(keys, volume_reader()),
            ScaleIntensityRanged(image_key, a_min=a_min, a_max=a_max, b_min=0.0, b_max=1.0, clip=True),
            decode,
            EnsureTyped(image_key, dtype=torch.float32),
            EnsureTyped(label_key, dtype=torch.uint8),
        ]
    )


def luna16_transforms(
    foreground: Sequence[int] = LUNA16_FOREGROUND, image_key: str = "image", label_key: str = "label"
) -> Compose:
    """LUNA16 as SegCaps: HU clipped to [-1024, 3072], ``(x + 1024) / 4096``; ``foreground`` labels -> 1, others -> 0."""
    return ct_transforms(luna16_label_map(foreground), HU_RANGE, image_key, label_key)


def cxr_transforms(
    spatial_size: Sequence[int] | None = (256, 256),
    image_key: str = "image",
    label_key: str = "label",
    intensity_range: tuple[float, float] | None = (0.0, 255.0),
) -> Compose:
    """Chest X-ray pre-processing: load, grey, merge and binarise lung masks, intensity to [0, 1], resize.

    Images may be PNG, JPEG or single-frame DICOM (RGB files are converted to grey with
    :class:`~medseg.transforms.ToGreyscaled`); a label may list several masks (Montgomery's left
    and right lungs), merged into one. ``intensity_range`` is mapped to [0, 1] with clipping (8-bit
    images: (0, 255)); ``None`` scales each image from its own minimum and maximum, for 12- or
    16-bit DICOM radiographs. The image is resized with area averaging and the mask with nearest
    neighbour, so it stays binary.
    """
    keys = [image_key, label_key]
    if intensity_range is None:
        scale = ScaleIntensityd(image_key, minv=0.0, maxv=1.0)
    else:
        scale = ScaleIntensityRanged(
            image_key, a_min=intensity_range[0], a_max=intensity_range[1], b_min=0.0, b_max=1.0, clip=True
        )
    return Compose(
        [
            load_imaged(image_key, image_readers_2d()),
            ToGreyscaled(image_key),
            load_imaged(label_key, mask_reader_2d()),
            MergeMasksd(label_key),
            scale,
            *_resize(keys, spatial_size),
            EnsureTyped(keys, dtype=torch.float32),
        ]
    )


def face_transforms(
    dataset: str = "lfw",
    spatial_size: Sequence[int] | None = (250, 250),
    include_hair: bool = True,
    greyscale: bool = False,
    image_key: str = "image",
    label_key: str = "label",
) -> Compose:
    """Face pre-processing for LFW Part Labels or HELEN: face mask, RGB or grey, 8-bit intensity to [0, 1], resize.

    Args:
        dataset: ``"lfw"`` (``.ppm`` colour labels) or ``"helen"`` (11 label images).
        spatial_size: output size (LFW images are 250x250); ``None`` keeps the native size.
        include_hair: face = skin + hair (the capsule IoU paper) or skin only (hair as background).
        greyscale: one grey channel (the capsule paper) instead of RGB (the FCN paper).
    """
    if dataset not in ("lfw", "helen"):
        raise ValueError(f"unknown face dataset {dataset!r}; choose 'lfw' or 'helen'")
    keys = [image_key, label_key]
    decode = (
        LFWPartsToMaskd(label_key, include_hair) if dataset == "lfw" else HelenLabelsToMaskd(label_key, include_hair)
    )
    return Compose(
        [
            load_imaged(image_key, image_readers_2d()),
            *([ToGreyscaled(image_key)] if greyscale else []),
            load_imaged(label_key, mask_reader_2d()),
            decode,
            ScaleIntensityRanged(image_key, a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
            *_resize(keys, spatial_size),
            EnsureTyped(keys, dtype=torch.float32),
        ]
    )
