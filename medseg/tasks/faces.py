"""Face segmentation (non-medical adapters of van Beers et al.): LFW Part Labels and HELEN."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from monai.transforms import Compose

from medseg.data import helen_datalist, lfw_datalist
from medseg.data.synthetic import make_helen, make_lfw
from medseg.transforms import (
    HELEN_CLASSES,
    HelenLabelsToLabelsd,
    LFWPartsToLabelsd,
    face_image_transforms,
    face_label_transforms,
)

from .base import LabelSet, Task, TaskOption, register_task

__all__ = ["HELEN", "HELEN_LABELS", "LFW", "LFW_LABELS"]

_OPTIONS = (
    TaskOption(
        "greyscale", "image", "faces: one grey channel (the capsule paper) instead of RGB", default=False, type=None
    ),
)

#: LFW Part Labels: hair and skin apart, the face (skin + hair, the capsule IoU paper's), or the skin alone.
LFW_LABELS = LabelSet(classes=("hair", "skin"), merged={"face": ("skin", "hair")}, default=("face",))
#: HELEN: its ten classes, the face (all of them) or the face without the hair (``skin``, as LFW's).
HELEN_LABELS = LabelSet(
    classes=HELEN_CLASSES[1:], merged={"face": HELEN_CLASSES[1:], "skin": HELEN_CLASSES[1:-1]}, default=("face",)
)


def _image(spatial_size: Sequence[int] | None, greyscale: bool = False) -> Compose:
    return face_image_transforms(spatial_size, greyscale)


def _label(decoder: type, spatial_size: Sequence[int] | None, labels: Sequence[Sequence[str]]) -> Compose:
    return face_label_transforms(decoder, spatial_size, labels)


def _channels(greyscale: bool = False) -> int:
    return 1 if greyscale else 3


def _intensity(greyscale: bool = False) -> dict:
    return {"channels": "grey" if greyscale else "rgb", "grey_levels": "x / 255", "range": [0, 1]}


LFW = register_task(
    Task(
        name="lfw",
        description="LFW Part Labels faces (lfw_funneled/, parts_lfw_funneled_gt_images/) with the official lists",
        adapter=lfw_datalist,
        make_image_transforms=_image,
        make_label_transforms=partial(_label, LFWPartsToLabelsd),
        options=_OPTIONS,
        synthetic={"lfw": make_lfw},
        image_channels=_channels,
        image_intensity=_intensity,
        label_set=LFW_LABELS,
    )
)

HELEN = register_task(
    Task(
        name="helen",
        description="HELEN faces (images/, labels/<id>/<id>_lblNN.png) with the exemplars/tuning/testing lists",
        adapter=helen_datalist,
        make_image_transforms=_image,
        make_label_transforms=partial(_label, HelenLabelsToLabelsd),
        options=_OPTIONS,
        synthetic={"helen": make_helen},
        image_channels=_channels,
        image_intensity=_intensity,
        label_set=HELEN_LABELS,
    )
)
