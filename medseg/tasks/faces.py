"""Face segmentation (non-medical adapters of van Beers et al.): LFW Part Labels and HELEN."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from monai.transforms import Compose

from medseg.data import helen_datalist, lfw_datalist
from medseg.data.synthetic import make_helen, make_lfw
from medseg.transforms import HelenLabelsToMaskd, LFWPartsToMaskd, face_image_transforms, face_label_transforms

from .base import Task, TaskOption, register_task

__all__ = ["HELEN", "LFW"]

_OPTIONS = (
    TaskOption(
        "include_hair",
        "label",
        "faces: face = skin + hair (default)",
        default=True,
        type=None,
        negative_flag="--no-hair",
    ),
    TaskOption(
        "greyscale", "image", "faces: one grey channel (the capsule paper) instead of RGB", default=False, type=None
    ),
)


def _image(spatial_size: Sequence[int] | None, greyscale: bool = False) -> Compose:
    return face_image_transforms(spatial_size, greyscale)


def _label(decoder: type, spatial_size: Sequence[int] | None, include_hair: bool = True) -> Compose:
    return face_label_transforms(decoder, spatial_size, include_hair)


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
        make_label_transforms=partial(_label, LFWPartsToMaskd),
        options=_OPTIONS,
        synthetic={"lfw": make_lfw},
        image_channels=_channels,
        image_intensity=_intensity,
    )
)

HELEN = register_task(
    Task(
        name="helen",
        description="HELEN faces (images/, labels/<id>/<id>_lblNN.png) with the exemplars/tuning/testing lists",
        adapter=helen_datalist,
        make_image_transforms=_image,
        make_label_transforms=partial(_label, HelenLabelsToMaskd),
        options=_OPTIONS,
        synthetic={"helen": make_helen},
        image_channels=_channels,
        image_intensity=_intensity,
    )
)
