"""CT lung tasks: LUNA16 (SegCaps) and any folder of CT volumes or DICOM series with masks."""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import Compose

from medseg.data import ct_datalist, luna16_datalist
from medseg.data.synthetic import make_dicom_ct, make_luna16
from medseg.transforms import HU_RANGE, LUNA16_FOREGROUND, ct_image_transforms, ct_label_transforms, luna16_label_map

from .base import Task, TaskOption, register_task

__all__ = ["CT", "LUNA16", "NAME_RULE_OPTIONS"]

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


def _ct_image(spatial_size: Sequence[int] | None) -> Compose:
    return ct_image_transforms()


def _luna16_label(spatial_size: Sequence[int] | None, foreground: Sequence[int] = LUNA16_FOREGROUND) -> Compose:
    return ct_label_transforms(luna16_label_map(foreground))


def _ct_label(spatial_size: Sequence[int] | None) -> Compose:
    return ct_label_transforms()


def _ct_intensity() -> dict:
    return {"window_hu": list(HU_RANGE), "range": [0, 1]}


LUNA16 = register_task(
    Task(
        name="luna16",
        description="LUNA16 CT scans (subset*/<seriesuid>.mhd) with the seg-lungs-LUNA16 lung masks",
        adapter=luna16_datalist,
        make_image_transforms=_ct_image,
        make_label_transforms=_luna16_label,
        volumetric=True,
        image_intensity=_ct_intensity,
        options=(
            TaskOption(
                "foreground",
                "label",
                "label values that are foreground (default 3 4, the lungs)",
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
        image_intensity=_ct_intensity,
        options=NAME_RULE_OPTIONS,
        synthetic={"dicom": make_dicom_ct},
    ),
)
