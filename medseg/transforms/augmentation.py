"""SegCaps' training augmentation as a MONAI pipeline, with the capsule IoU paper's probabilities.

LaLonde & Bagci (2018) and van Beers (capsule networks with IoU loss) apply, independently and each
with its own probability, to the image and its mask together (``augmentImages`` in SegCaps' code); the
elastic deformation and salt and pepper are medseg transforms:

============================  ===========  ===================================  ================================
transform                     probability  parameters (SegCaps)                 MONAI transform
============================  ===========  ===================================  ================================
rotation                      1/10         angle uniform in +-45 degrees        ``RandRotated``
elastic deformation           1/5          alpha 1000, sigma 80, affine 50 px   :class:`Rand2DSimardElasticd`
shift                         1/10         up to 20 % of the size per axis      ``RandAffined(translate_range)``
shear                         1/10         intensity 16 (degrees)               ``RandAffined(shear_range)``
zoom                          1/10         Keras zoom 0.75 = magnification 4/3  ``RandZoomd``
horizontal flip               1/10                                              ``RandFlipd``
vertical flip                 1/10                                              ``RandFlipd``
salt and pepper (image only)  1/10         salt share 0.2, amount 0.04          :class:`RandSaltAndPepperd`
============================  ===========  ===================================  ================================

Spatial transforms interpolate image and mask bilinearly with zeros outside, sharing their random
parameters, and the mask is re-binarised at 0.5 at the end (SegCaps: ``mask > 0.5``) with MONAI's
``AsDiscreted``. Keras' ``random_shear`` draws the shear *angle* θ uniformly and maps (row, col) with
``[[1, -sin θ], [0, cos θ]]``; MONAI draws the shear *factor*, here uniformly in ``+-tan 16°``, with no
``cos θ`` rescaling (at most 4 %). Keras took the intensity in radians before version 2.2 and in
degrees since; degrees are used here (16 radians would be a near-arbitrary angle).

Axes: images loaded by MONAI's ``PILReader``/``ITKReader`` are (x, y); the horizontal flip mirrors x
(spatial axis 0), the vertical flip y (spatial axis 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from monai.transforms import AsDiscreted, Compose, RandAffined, RandFlipd, RandRotated, RandZoomd

from .intensity import RandSaltAndPepperd
from .spatial import Rand2DSimardElasticd

__all__ = ["SEGCAPS_AUGMENTATION", "segcaps_augmentation"]

#: Probability of each SegCaps augmentation (LaLonde & Bagci 2018; van Beers, capsule IoU paper).
SEGCAPS_AUGMENTATION = {
    "rotate": 0.1,
    "elastic": 0.2,
    "shift": 0.1,
    "shear": 0.1,
    "zoom": 0.1,
    "flip_horizontal": 0.1,
    "flip_vertical": 0.1,
    "salt_and_pepper": 0.1,
}


def segcaps_augmentation(
    spatial_size: Sequence[int],
    image_key: str = "image",
    label_key: str = "label",
    probabilities: Mapping[str, float] | None = None,
    max_rotation: float = 45.0,
    elastic_alpha: float = 1000.0,
    elastic_sigma: float = 80.0,
    elastic_affine: float = 50.0,
    max_shift: float = 0.2,
    max_shear: float = 16.0,
    zoom: float = 0.75,
    salt_vs_pepper: float = 0.2,
    amount: float = 0.04,
) -> Compose:
    """SegCaps' augmentation for 2D channel-first image/mask pairs of size ``spatial_size``.

    Args:
        spatial_size: the (x, y) size of the images; the shift range is a fraction of it.
        image_key, label_key: the keys of the image and its binary mask.
        probabilities: overrides of :data:`SEGCAPS_AUGMENTATION` by name (unknown names raise).
        max_rotation: rotation range, degrees.
        elastic_alpha, elastic_sigma, elastic_affine: :class:`~medseg.transforms.Rand2DSimardElasticd`.
        max_shift: shift range, fraction of the size along each axis.
        max_shear: shear angle range, degrees.
        zoom: Keras ``zoom_range`` value; the image is magnified by ``1 / zoom``.
        salt_vs_pepper, amount: :class:`~medseg.transforms.RandSaltAndPepperd`, image only.
    """
    if len(spatial_size) != 2:
        raise ValueError(f"segcaps_augmentation: spatial_size must be 2D, got {spatial_size}")
    prob = dict(SEGCAPS_AUGMENTATION)
    unknown = set(probabilities or {}) - set(prob)
    if unknown:
        raise ValueError(f"segcaps_augmentation: unknown augmentation(s) {sorted(unknown)}; known: {list(prob)}")
    prob.update(probabilities or {})
    keys = [image_key, label_key]
    spatial = {"mode": "bilinear", "padding_mode": "zeros"}
    return Compose(
        [
            RandRotated(keys, range_x=math.radians(max_rotation), prob=prob["rotate"], keep_size=True, **spatial),
            Rand2DSimardElasticd(keys, elastic_alpha, elastic_sigma, elastic_affine, prob=prob["elastic"]),
            RandAffined(keys, prob=prob["shift"], translate_range=[max_shift * s for s in spatial_size], **spatial),
            RandAffined(keys, prob=prob["shear"], shear_range=(math.tan(math.radians(max_shear)), 0.0), **spatial),
            RandZoomd(
                keys,
                prob=prob["zoom"],
                min_zoom=1 / zoom,
                max_zoom=1 / zoom,
                mode="bilinear",
                padding_mode="constant",
                keep_size=True,
            ),
            RandFlipd(keys, prob=prob["flip_horizontal"], spatial_axis=0),
            RandFlipd(keys, prob=prob["flip_vertical"], spatial_axis=1),
            RandSaltAndPepperd(image_key, prob=prob["salt_and_pepper"], amount=amount, salt_vs_pepper=salt_vs_pepper),
            AsDiscreted(label_key, threshold=0.5),
        ]
    )
