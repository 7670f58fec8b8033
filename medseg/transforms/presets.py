"""Per-task pre-processing, split into an image path and a label path.

Each task has two MONAI pipelines:

- ``*_image_transforms`` loads ``"image"`` with explicitly chosen readers (:mod:`medseg.transforms.io`) and
  applies the paper's intensity pre-processing and resizing. It needs no label, so training, evaluation and
  inference run exactly the same image path.
- ``*_label_transforms`` loads ``"label"``, decodes it to one binary channel and resizes it onto the image's
  pixel grid: area averaging, then foreground where at least half of a pixel is.

Convention: images and labels come out as float32 MetaTensors carrying the file's affine; labels hold only 0
and 1. A task record (:mod:`medseg.tasks`) composes the two halves for an image/mask pair.

- CT (:func:`ct_image_transforms`, SegCaps): Hounsfield units clipped to [-1024, 3072] and scaled by
  ``(x + 1024) / 4096`` to [0, 1], no resampling; LUNA16 lungs (labels 3 and 4) foreground, trachea (5)
  background. Volumes come out as (1, x, y, z); :class:`medseg.data.SliceDataset` cuts the axial slices.
- Chest X-ray (:func:`cxr_image_transforms`, Dubey's study): grey, 8-bit grey levels ``/ 255`` (deeper ones by
  their own range) to [0, 1], 256x256 by default;
  masks merged and binarised at half their maximum.
- Faces (:func:`face_image_transforms`, van Beers et al.): 250x250, RGB (FCN paper) or grey (capsule paper);
  face mask with or without hair.

``spatial_size=None`` keeps the native size (``medseg prepare`` validates pairs that way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.transforms import (
    AsDiscreted,
    Compose,
    EnsureTyped,
    MapLabelValued,
    ScaleIntensityRanged,
)

from .intensity import ScaleGreyLevelsd, ToGreyscaled
from .io import image_readers_2d, load_imaged, mask_reader_2d, volume_reader
from .masks import LUNA16_LABELS, FaceLabelsd, LFWPartsToLabelsd, MergeMasksd, OneHotOrBinaryd
from .resize import AreaResized

__all__ = [
    "HU_RANGE",
    "LUNA16_FOREGROUND",
    "ct_image_transforms",
    "ct_label_transforms",
    "cxr_image_transforms",
    "cxr_label_transforms",
    "face_image_transforms",
    "face_label_transforms",
    "luna16_label_map",
    "skin_label_transforms",
]

#: SegCaps' Hounsfield window: clipped to it, then scaled to [0, 1].
HU_RANGE = (-1024.0, 3072.0)

#: LUNA16 labels that are foreground in SegCaps: the left and right lungs (the trachea is background).
LUNA16_FOREGROUND = (LUNA16_LABELS["left_lung"], LUNA16_LABELS["right_lung"])


def _resize(key: str, spatial_size: Sequence[int] | None) -> list:
    return [] if spatial_size is None else [AreaResized(key, spatial_size=spatial_size)]


def _image_resize(key: str, spatial_size: Sequence[int] | None) -> list:
    """Area averaging: no aliasing when a radiograph or photo is shrunk; a prediction is brought back to the
    image's grid bilinearly (:class:`~medseg.transforms.AreaResized`)."""
    return _resize(key, spatial_size)


def _label_resize(key: str, spatial_size: Sequence[int] | None) -> list:
    """Area averaging, then foreground where at least half of a pixel is foreground (one-hot labels: the label
    covering most of the pixel, :class:`~medseg.transforms.OneHotOrBinaryd`).

    The mask lands on the same pixel grid as the area-averaged image, and each pixel says whether the
    original mask covers most of it. Nearest neighbour would shift the mask by up to half an input pixel
    against the image and make the boundary jagged where the scale is not a whole number (500 -> 256:
    IoU 0.978 against this resampling on the chest X-rays of ``cxr_openist``).
    """
    if spatial_size is None:
        return []
    return [*_resize(key, spatial_size), OneHotOrBinaryd(key)]


def _float(key: str) -> EnsureTyped:
    return EnsureTyped(key, dtype=torch.float32)


def luna16_label_map(foreground: Sequence[int] = LUNA16_FOREGROUND) -> dict[int, int]:
    """LUNA16 label value -> 0/1: ``{3: 1, 4: 1, 5: 0}`` for the default lungs-only rule."""
    unknown = set(foreground) - set(LUNA16_LABELS.values())
    if unknown:
        raise ValueError(f"LUNA16 foreground labels must be among {LUNA16_LABELS}, got {sorted(unknown)}")
    return {value: int(value in foreground) for value in LUNA16_LABELS.values()}


def ct_image_transforms(hu_range: Sequence[float] = HU_RANGE, image_key: str = "image") -> Compose:
    """CT volume: load with ITK, clip Hounsfield units to ``hu_range``, ``(x - a_min) / (a_max - a_min)``."""
    a_min, a_max = hu_range
    return Compose(
        [
            load_imaged(image_key, volume_reader()),
            ScaleIntensityRanged(image_key, a_min=a_min, a_max=a_max, b_min=0.0, b_max=1.0, clip=True),
            _float(image_key),
        ]
    )


def ct_label_transforms(
    label_map: Mapping[int, int] | None = None, threshold: float | str = "levels", label_key: str = "label"
) -> Compose:
    """CT mask: load with ITK; ``label_map`` (value -> 0/1, MONAI's ``MapLabelValued``) or, when ``None``,
    binarised at ``threshold`` (:class:`~medseg.transforms.MergeMasks`: by default the midpoint of the mask's two
    levels, which a mask resampled by its source keeps: 127.5 for the 0/255 masks of ``ct_imlab``, 0.5 for 0/1)."""
    if label_map is None:
        decode = MergeMasksd(label_key, threshold)
    else:
        decode = MapLabelValued(label_key, orig_labels=list(label_map), target_labels=list(label_map.values()))
    return Compose([load_imaged(label_key, volume_reader()), decode, _float(label_key)])


def cxr_image_transforms(spatial_size: Sequence[int] | None = (256, 256), image_key: str = "image") -> Compose:
    """Chest radiograph: load (PNG, JPEG or single-frame DICOM), grey, intensity to [0, 1], resize.

    RGB files are converted to grey with :class:`~medseg.transforms.ToGreyscaled`. Grey levels go to [0, 1] with
    :class:`~medseg.transforms.ScaleGreyLevelsd`: 8-bit images as ``x / 255``, 12- or 16-bit DICOM or PNG
    radiographs from their own minimum and maximum. The image is resized with area averaging.
    """
    return Compose(
        [
            load_imaged(image_key, image_readers_2d()),
            ToGreyscaled(image_key),
            ScaleGreyLevelsd(image_key),
            *_image_resize(image_key, spatial_size),
            _float(image_key),
        ]
    )


def cxr_label_transforms(spatial_size: Sequence[int] | None = (256, 256), label_key: str = "label") -> Compose:
    """Lung mask(s): load, merge (Montgomery's left and right masks) and binarise at half the maximum, resize."""
    return Compose(
        [
            load_imaged(label_key, mask_reader_2d()),
            MergeMasksd(label_key),
            *_label_resize(label_key, spatial_size),
            _float(label_key),
        ]
    )


def face_image_transforms(
    spatial_size: Sequence[int] | None = (250, 250), greyscale: bool = False, image_key: str = "image"
) -> Compose:
    """Face photo: load, RGB or grey (the capsule paper), 8-bit intensity to [0, 1], resize (LFW is 250x250)."""
    return Compose(
        [
            load_imaged(image_key, image_readers_2d()),
            *([ToGreyscaled(image_key)] if greyscale else []),
            ScaleGreyLevelsd(image_key),
            *_image_resize(image_key, spatial_size),
            _float(image_key),
        ]
    )


def face_label_transforms(
    decoder: type[FaceLabelsd] = LFWPartsToLabelsd,
    spatial_size: Sequence[int] | None = (250, 250),
    labels: Sequence[Sequence[str]] = (("skin", "hair"),),
    label_key: str = "label",
) -> Compose:
    """A face dataset's label images to a model's labels, resized.

    Args:
        decoder: :class:`~medseg.transforms.LFWPartsToLabelsd` (LFW Part Labels' ``.ppm``) or
            :class:`~medseg.transforms.HelenLabelsToLabelsd` (HELEN's 11 label images).
        labels: for each label, the classes it covers: the face with its hair (the capsule IoU paper), the face
            without it (hair as background), or several labels (hair and skin apart: one-hot channels).
    """
    return Compose(
        [
            load_imaged(label_key, mask_reader_2d()),
            decoder(label_key, labels),
            *_label_resize(label_key, spatial_size),
            _float(label_key),
        ]
    )


def skin_label_transforms(spatial_size: Sequence[int] | None = (256, 192), label_key: str = "label") -> Compose:
    """Lesion mask: PNG, JPEG or 1- or 24-bit BMP read as 8-bit grey levels (:func:`~medseg.transforms.io.grey_levels`),
    lesion above 127 (a JPEG mask's compression noise at the edges, as the ISIC 2017 subset's, stays out), resized."""
    return Compose(
        [
            load_imaged(label_key, mask_reader_2d(grey=True)),
            AsDiscreted(label_key, threshold=127.5),
            *_label_resize(label_key, spatial_size),
            _float(label_key),
        ]
    )
