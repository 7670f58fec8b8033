"""Skin lesions on dermoscopy photographs: ISIC 2017, PH2, or any image/mask folder (the kappa-loss report's
melanoma task)."""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import Compose

from medseg.data import SKIN_LAYOUTS, skin_datalist
from medseg.data.synthetic import make_isic, make_ph2
from medseg.transforms import face_image_transforms, skin_label_transforms

from .base import LabelSet, Task, TaskOption, register_task
from .ct import NAME_RULE_OPTIONS

__all__ = ["SKIN"]


def _image(spatial_size: Sequence[int] | None) -> Compose:
    return face_image_transforms(spatial_size)


def _label(spatial_size: Sequence[int] | None) -> Compose:
    return skin_label_transforms(spatial_size)


def _intensity() -> dict:
    return {"channels": "rgb", "grey_levels": "x / 255", "range": [0, 1]}


SKIN = register_task(
    Task(
        name="skin",
        description="dermoscopy photographs with lesion masks: ISIC 2017, PH2, or any folder with a mask-name rule",
        adapter=skin_datalist,
        make_image_transforms=_image,
        make_label_transforms=_label,
        options=(
            TaskOption(
                "layout", "pairs", "dataset layout (default: detected)", default="auto", choices=("auto", *SKIN_LAYOUTS)
            ),
            *NAME_RULE_OPTIONS,
        ),
        synthetic={"isic": make_isic, "ph2": make_ph2},
        image_channels=lambda: 3,
        image_intensity=_intensity,
        label_set=LabelSet(("lesion",)),
    ),
)
