"""CT lung tasks: LUNA16 (SegCaps) and any folder of CT volumes or DICOM series with masks."""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import Compose

from medseg.data import ct_datalist, luna16_datalist
from medseg.data.synthetic import make_dicom_ct, make_luna16
from medseg.transforms import (
    HU_RANGE,
    LUNA16_FOREGROUND,
    LUNG_CODES,
    MASK_THRESHOLDS,
    ct_image_transforms,
    ct_label_transforms,
    lung_label_map,
)

from .base import LabelSet, Task, TaskOption, register_task

__all__ = ["CT", "CT_OPTIONS", "LUNA16", "NAME_RULE_OPTIONS"]

#: The image-to-mask name rule of folder layouts (see :class:`medseg.data.NameRule`), shared with chest X-rays.
NAME_RULE_OPTIONS = (
    TaskOption(
        "mask_pattern",
        "pairs",
        "mask path relative to the data root, e.g. '{stem}@.png', 'masks/{stem}_mask.png', 'wholeLung-{id}.nrrd'",
    ),
    TaskOption(
        "image_pattern",
        "pairs",
        "what image names look like, with {fields} for the mask pattern, e.g. 'ct-{id}.nrrd' (default *)",
        default="*",
    ),
    TaskOption("image_dir", "pairs", "the images' folder relative to the data root (default: the root)"),
)


def mask_threshold(text: str) -> float | str:
    """A ``mask_threshold`` from the command line: a number, ``levels`` or ``half_max``."""
    if text in MASK_THRESHOLDS:
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number or one of {', '.join(MASK_THRESHOLDS)}, got {text!r}") from None


#: CT options: the Hounsfield window of the image pre-processing and how a mask is binarised.
CT_OPTIONS = (
    TaskOption(
        "hu_window",
        "image",
        f"the Hounsfield units clipped and scaled to [0, 1] (default {HU_RANGE[0]:g} {HU_RANGE[1]:g}, SegCaps')",
        default=HU_RANGE,
        type=float,
        nargs=2,
    ),
    TaskOption(
        "slice_context",
        "image",
        "neighbouring slices on each side given to the 2D network as channels with each axial slice (default 0: "
        "the slice alone; 1: three channels, a 2.5D input; no better on the shared real CT, ct_lung_unet's README)",
        default=0,
        type=int,
    ),
    TaskOption(
        "mask_encoding",
        "label",
        "what a mask's values mean: binary (lungs above --mask-threshold, default), luna16 (3 left lung, 4 right, 5 "
        "trachea) or cip (a Chest Imaging Platform label map, lm-N.nrrd: regions 9-11 left lung, 12-14 right)",
        default="binary",
        choices=("binary", *LUNG_CODES),
    ),
    TaskOption(
        "mask_threshold",
        "label",
        "a mask is foreground above this value, or above the midpoint of its two levels (levels, default: 127.5 "
        "for 0/255 masks resampled by their source, 0.5 for 0/1), or above half its maximum (half_max)",
        default="levels",
        type=mask_threshold,
    ),
)


def _ct_image(
    spatial_size: Sequence[int] | None, hu_window: Sequence[float] = HU_RANGE, slice_context: int = 0
) -> Compose:
    return ct_image_transforms(tuple(hu_window), slice_context=slice_context)


def _ct_channels(slice_context: int = 0, **_: object) -> int:
    if isinstance(slice_context, bool) or not isinstance(slice_context, int) or slice_context < 0:
        raise ValueError(f"slice_context must be a whole number of slices, 0 or more, got {slice_context!r}")
    return 2 * slice_context + 1


def _luna16_label(
    spatial_size: Sequence[int] | None,
    foreground: Sequence[int] = LUNA16_FOREGROUND,
    labels: Sequence[Sequence[str]] | None = None,
) -> Compose:
    return ct_label_transforms(lung_label_map("luna16", labels, foreground))


#: LUNA16's lung masks: the left and right lung and the trachea apart; SegCaps' lungs are both lungs.
LUNA16_LABEL_SET = LabelSet(
    classes=("left_lung", "right_lung", "trachea"), merged={"lungs": ("left_lung", "right_lung")}, default=("lungs",)
)
#: A CT folder's masks: the lungs, or the left and right lung where the masks tell them apart (``mask_encoding``).
CT_LABEL_SET = LabelSet(classes=("left_lung", "right_lung"), merged={"lungs": ("left_lung", "right_lung")})


def _ct_label(
    spatial_size: Sequence[int] | None,
    mask_threshold: float | str = "levels",
    mask_encoding: str = "binary",
    labels: Sequence[Sequence[str]] | None = None,
) -> Compose:
    if mask_encoding != "binary":
        return ct_label_transforms(lung_label_map(mask_encoding, labels), low_byte=mask_encoding == "cip")
    if labels is not None and [tuple(group) for group in labels] != [("left_lung", "right_lung")]:
        raise ValueError(
            "binary masks (mask_encoding binary) hold the lungs as one label; the left and right lung need masks "
            f"that tell them apart: mask_encoding {' or '.join(LUNG_CODES)}"
        )
    return ct_label_transforms(threshold=mask_threshold)


def _ct_intensity(hu_window: Sequence[float] = HU_RANGE, **_: object) -> dict:
    return {"window_hu": [float(v) for v in hu_window], "range": [0, 1]}


LUNA16 = register_task(
    Task(
        name="luna16",
        description="LUNA16 CT scans (subset*/<seriesuid>.mhd) with the seg-lungs-LUNA16 lung masks",
        adapter=luna16_datalist,
        make_image_transforms=_ct_image,
        make_label_transforms=_luna16_label,
        volumetric=True,
        image_intensity=_ct_intensity,
        label_set=LUNA16_LABEL_SET,
        options=(
            TaskOption(
                "foreground",
                "label",
                "label values of the one label lungs (default 3 4: left and right lung)",
                default=LUNA16_FOREGROUND,
                type=int,
                nargs="+",
            ),
        ),
        synthetic={"luna16": make_luna16},
    )
)

CT = register_task(
    Task(
        name="ct",
        description="any folder of CT volumes (NIfTI, NRRD, MHA/MHD) or DICOM series with masks named by a rule",
        adapter=ct_datalist,
        make_image_transforms=_ct_image,
        make_label_transforms=_ct_label,
        volumetric=True,
        image_channels=_ct_channels,
        image_intensity=_ct_intensity,
        label_set=CT_LABEL_SET,
        options=(*NAME_RULE_OPTIONS, *CT_OPTIONS),
        synthetic={"dicom": make_dicom_ct},
    ),
)
