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
  background. Volumes come out as (1, x, y, z), their last axis the axial one whatever the order of the file's
  array axes (:class:`~medseg.transforms.AxialOrientationd`); :class:`medseg.data.SliceDataset` cuts the axial slices.
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
    Lambdad,
    MapLabelValued,
    ScaleIntensityRanged,
)

from .intensity import ScaleGreyLevelsd, ToGreyscaled
from .io import image_readers_2d, load_imaged, mask_reader_2d, volume_reader
from .masks import LUNA16_LABELS, FaceLabelsd, LFWPartsToLabelsd, MergeMasksd, OneHotOrBinaryd
from .orientation import AxialOrientationd
from .resize import AreaResized
from .slice_context import AdjacentSlicesd

__all__ = [
    "HU_RANGE",
    "LUNA16_FOREGROUND",
    "LUNG_CODES",
    "ct_image_transforms",
    "ct_label_transforms",
    "cxr_image_transforms",
    "cxr_label_transforms",
    "face_image_transforms",
    "face_label_transforms",
    "lung_label_map",
    "skin_label_transforms",
]

#: SegCaps' Hounsfield window: clipped to it, then scaled to [0, 1].
HU_RANGE = (-1024.0, 3072.0)

#: LUNA16 labels that are foreground in SegCaps: the left and right lungs (the trachea is background).
LUNA16_FOREGROUND = (LUNA16_LABELS["left_lung"], LUNA16_LABELS["right_lung"])

#: The values of each class in lung masks that tell the lungs apart: LUNA16's ``seg-lungs-LUNA16`` masks, and the
#: Chest Imaging Platform's label maps (``lm``: value = type x 256 + region; regions 9-11 are the thirds of the left
#: lung, 12-14 of the right, whatever the type: vessels and airways inside the lung keep their region).
LUNG_CODES = {
    "luna16": {name: (value,) for name, value in LUNA16_LABELS.items()},
    "cip": {"left_lung": (9, 10, 11), "right_lung": (12, 13, 14)},
}


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


def lung_label_map(
    encoding: str = "luna16",
    labels: Sequence[Sequence[str]] | None = None,
    foreground: Sequence[int] | None = None,
) -> dict[int, int]:
    """A lung mask's value -> the model's label value, for masks that tell the lungs apart (:data:`LUNG_CODES`).

    ``labels``: for each of a model's labels, the classes it covers (``(("left_lung",), ("right_lung",))``); each
    class's values -> its label's number (1, 2, ...), every other value 0. The default, both lungs as one label, is
    SegCaps' rule for LUNA16, ``{3: 1, 4: 1, 5: 0}``, whose values ``foreground`` may change (LUNA16 masks, one
    label only). A ``cip`` mask's values are its regions, ``value & 255`` (:func:`ct_label_transforms` takes the low
    byte first).
    """
    codes = LUNG_CODES[encoding]
    known = sorted({value for values in codes.values() for value in values})
    values = range(256) if encoding == "cip" else known
    groups = [tuple(group) for group in labels] if labels else [("left_lung", "right_lung")]
    if foreground is not None and tuple(foreground) != LUNA16_FOREGROUND:
        if encoding != "luna16" or groups != [("left_lung", "right_lung")]:
            raise ValueError("foreground sets the values of the one label lungs of LUNA16 masks; leave it out here")
        unknown = set(foreground) - set(known)
        if unknown:
            raise ValueError(f"LUNA16 foreground labels must be among {known}, got {sorted(unknown)}")
        return {value: int(value in foreground) for value in values}
    missing = [name for group in groups for name in group if name not in codes]
    if missing:
        raise ValueError(f"{encoding} masks have no {', '.join(missing)}; they have {', '.join(codes)}")
    number = {value: index for index, group in enumerate(groups, start=1) for name in group for value in codes[name]}
    return {value: number.get(value, 0) for value in values}


def ct_image_transforms(
    hu_range: Sequence[float] = HU_RANGE, image_key: str = "image", slice_context: int = 0
) -> Compose:
    """CT volume: load with ITK, axes in axial order (:class:`~medseg.transforms.AxialOrientationd`: slices along the
    scan's axial direction whatever the order of its array axes), clip Hounsfield units to ``hu_range``,
    ``(x - a_min) / (a_max - a_min)``; with ``slice_context``, each slice's neighbours on each side as channels
    (:class:`~medseg.transforms.AdjacentSlicesd`)."""
    a_min, a_max = hu_range
    context = [AdjacentSlicesd(image_key, slice_context)] if slice_context else []
    return Compose(
        [
            load_imaged(image_key, volume_reader()),
            AxialOrientationd(image_key),
            ScaleIntensityRanged(image_key, a_min=a_min, a_max=a_max, b_min=0.0, b_max=1.0, clip=True),
            _float(image_key),
            *context,
        ]
    )


def ct_label_transforms(
    label_map: Mapping[int, int] | None = None,
    threshold: float | str = "levels",
    label_key: str = "label",
    low_byte: bool = False,
) -> Compose:
    """CT mask: load with ITK; ``label_map`` (value -> label value, MONAI's ``MapLabelValued``: 0/1 for one label,
    then one-hot channels, background first, for several; ``low_byte``: of ``value & 255``, a CIP label map's
    region) or, when ``None``, binarised at ``threshold`` (:class:`~medseg.transforms.MergeMasks`: by default the
    midpoint of the mask's two levels, which a mask resampled by its source keeps: 127.5 for the 0/255 masks of
    ``ct_imlab``, 0.5 for 0/1). Its axes are put in axial order as the image's are."""
    if label_map is None:
        decode = [MergeMasksd(label_key, threshold)]
    else:
        region = [Lambdad(label_key, low_byte_of)] if low_byte else []
        decode = [
            *region,
            MapLabelValued(label_key, orig_labels=list(label_map), target_labels=list(label_map.values())),
        ]
        if (labels := max(label_map.values())) > 1:
            decode.append(AsDiscreted(label_key, to_onehot=labels + 1))
    return Compose([load_imaged(label_key, volume_reader()), AxialOrientationd(label_key), *decode, _float(label_key)])


def low_byte_of(values: torch.Tensor) -> torch.Tensor:
    """``values & 255`` (a CIP label map's region codes), of the values' own type."""
    return (values.long() & 255).to(values.dtype)


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
