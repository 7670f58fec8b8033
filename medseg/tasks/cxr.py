"""Chest X-ray lungs: Montgomery, Shenzhen, or any image/mask folder (the chest X-ray loss study)."""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import Compose

from medseg.data import CXR_LAYOUTS, cxr_datalist
from medseg.data.synthetic import make_cxr, make_cxr_dicom, make_shenzhen
from medseg.transforms import cxr_image_transforms, cxr_label_transforms

from .base import LabelSet, Task, TaskOption, register_task
from .ct import NAME_RULE_OPTIONS

__all__ = ["CXR"]


def _image(spatial_size: Sequence[int] | None) -> Compose:
    return cxr_image_transforms(spatial_size)


def _label(spatial_size: Sequence[int] | None) -> Compose:
    return cxr_label_transforms(spatial_size)


def _intensity() -> dict:
    return {"channels": "grey", "grey_levels": "8-bit: x / 255; 12- or 16-bit: their own range", "range": [0, 1]}


CXR = register_task(
    Task(
        name="cxr",
        description="chest radiographs with lung masks: Montgomery, Shenzhen, or any folder with a mask-name rule",
        adapter=cxr_datalist,
        make_image_transforms=_image,
        make_label_transforms=_label,
        options=(
            TaskOption(
                "layout", "pairs", "dataset layout (default: detected)", default="auto", choices=("auto", *CXR_LAYOUTS)
            ),
            *NAME_RULE_OPTIONS,
        ),
        synthetic={"montgomery": make_cxr, "shenzhen": make_shenzhen, "dicom": make_cxr_dicom},
        image_intensity=_intensity,
        label_set=LabelSet(("lungs",)),
    ),
)
