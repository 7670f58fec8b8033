"""Ground-truth mask decoders that MONAI does not provide, and the label tables of the datasets.

- :class:`MergeMasks`: channels (e.g. Montgomery's left and right lung masks) merged into one
  binary mask, binarised at half the mask's maximum.
- :class:`ArgmaxToMask`: one channel per class (LFW's colour channels, HELEN's label images) to a
  class map by the argmax over channels, then to a binary mask of the chosen classes.
  :class:`LFWPartsToMaskd` and :class:`HelenLabelsToMaskd` (:class:`FaceMaskd`) fix the classes of the
  two face datasets.

LUNA16's label values are mapped with MONAI's own ``MapLabelValued`` (see
:func:`medseg.transforms.luna16_label_map`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_tensor

__all__ = [
    "HELEN_CLASSES",
    "LFW_CLASSES",
    "LFW_COLOURS",
    "LUNA16_LABELS",
    "MASK_THRESHOLDS",
    "ArgmaxToMask",
    "ArgmaxToMaskd",
    "FaceMaskd",
    "HelenLabelsToMaskd",
    "LFWPartsToMaskd",
    "MergeMasks",
    "MergeMasksd",
    "mask_levels_threshold",
]

#: Label values of the LUNA16 ``seg-lungs-LUNA16`` masks.
LUNA16_LABELS = {"left_lung": 3, "right_lung": 4, "trachea": 5}

#: Colour code of the LFW Part Labels ground truth (``.ppm``): channel c (R, G, B) is class c.
LFW_COLOURS = {"hair": (255, 0, 0), "skin": (0, 255, 0), "background": (0, 0, 255)}

#: LFW Part Labels classes in channel order.
LFW_CLASSES = tuple(LFW_COLOURS)

#: HELEN face-parsing classes (Smith et al. 2013), label image ``_lblNN.png`` for class NN.
HELEN_CLASSES = (
    "background",
    "face_skin",
    "left_eyebrow",
    "right_eyebrow",
    "left_eye",
    "right_eye",
    "nose",
    "upper_lip",
    "inner_mouth",
    "lower_lip",
    "hair",
)


#: The rules :class:`MergeMasks` binarises a mask by, besides a fixed threshold.
MASK_THRESHOLDS = ("half_max", "levels")


def mask_levels_threshold(mask: torch.Tensor) -> float:
    """The midpoint of a binary mask's two levels: its most frequent value in the lower half of its range (the
    background) and in the upper half (the foreground). A mask resampled with interpolation (ringing around the
    border, values beyond both levels) keeps its two levels in most voxels, so this gives the threshold its source
    drew it with: 127.5 for a 0/255 mask, 0.5 for a 0/1 mask."""
    values = mask.flatten()
    middle = (float(values.min()) + float(values.max())) / 2
    low, high = values[values <= middle], values[values > middle]
    if high.numel() == 0:
        return middle
    levels = [float(torch.mode(part).values) for part in (low, high)]
    return sum(levels) / 2


class MergeMasks(Transform):
    """Merge the channels of a channel-first mask into one binary channel.

    A pixel is foreground where any channel exceeds the threshold:

    - ``"half_max"`` (default): half of the mask's maximum, so masks stored as 0/255, 0/1 or anti-aliased grey levels
      all binarise the same way, and the Montgomery left and right lung masks (loaded as two channels) become one
      lung mask;
    - ``"levels"``: the midpoint of the mask's two levels (:func:`mask_levels_threshold`), for masks resampled by
      their source (ringing beyond both levels moves the maximum, not the levels);
    - a number: that value.

    An all-zero mask stays zero.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, threshold: float | str = "half_max") -> None:
        if isinstance(threshold, str) and threshold not in MASK_THRESHOLDS:
            raise ValueError(f"unknown mask threshold {threshold!r}; a number or one of {MASK_THRESHOLDS}")
        self.threshold = threshold

    def __call__(self, mask: NdarrayOrTensor) -> torch.Tensor:
        mask = convert_to_tensor(mask, track_meta=get_track_meta())
        if self.threshold == "half_max":
            level = mask.max() / 2
        elif self.threshold == "levels":
            level = mask_levels_threshold(convert_to_tensor(mask, track_meta=False))
        else:
            level = float(self.threshold)
        return (mask > level).any(dim=0, keepdim=True).to(torch.float32)


class MergeMasksd(MapTransform):
    """Dictionary-based :class:`MergeMasks`."""

    backend = MergeMasks.backend

    def __init__(
        self, keys: KeysCollection, threshold: float | str = "half_max", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.merger = MergeMasks(threshold)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.merger(d[key])
        return d


class ArgmaxToMask(Transform):
    """Channel-per-class label image to a binary mask of the ``foreground`` classes.

    ``class = argmax over channels`` (the first channel wins ties, so a pixel where every channel is
    zero is class 0), then ``mask = class in foreground``: one channel, float 0/1. MONAI's
    ``AsDiscrete(argmax=True)`` followed by ``MapLabelValue`` would do the same in two passes with
    a per-image label table; this does it in one.

    Args:
        foreground: the class (channel) indices that are foreground.
        num_classes: when given, the number of channels the input must have.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, foreground: Sequence[int], num_classes: int | None = None) -> None:
        if not foreground:
            raise ValueError("ArgmaxToMask: foreground must name at least one class")
        self.foreground = tuple(int(c) for c in foreground)
        self.num_classes = num_classes

    def __call__(self, labels: NdarrayOrTensor) -> torch.Tensor:
        labels = convert_to_tensor(labels, track_meta=get_track_meta())
        channels = labels.shape[0]
        if self.num_classes is not None and channels != self.num_classes:
            raise ValueError(
                f"ArgmaxToMask: expected {self.num_classes} channels (one per class), got shape {tuple(labels.shape)}"
            )
        if max(self.foreground) >= channels:
            raise ValueError(
                f"ArgmaxToMask: foreground classes {self.foreground} exceed the {channels} channels "
                f"of shape {tuple(labels.shape)}"
            )
        classes = labels.argmax(dim=0, keepdim=True)
        foreground = torch.tensor(self.foreground, device=classes.device)
        return torch.isin(classes, foreground).to(torch.float32)


class ArgmaxToMaskd(MapTransform):
    """Dictionary-based :class:`ArgmaxToMask`."""

    backend = ArgmaxToMask.backend

    def __init__(
        self,
        keys: KeysCollection,
        foreground: Sequence[int],
        num_classes: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.decoder = ArgmaxToMask(foreground, num_classes)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.decoder(d[key])
        return d


class FaceMaskd(ArgmaxToMaskd):
    """A face dataset's channel-per-class label image to a face mask, with or without the hair.

    Van Beers et al. segment the face both with the hair (face = skin + hair, as in the capsule IoU paper)
    and without it (hair counted as background). Subclasses name the dataset's classes in channel order
    (:attr:`classes`) and those that make the face without hair (:attr:`face`).
    """

    classes: tuple[str, ...] = ()
    face: tuple[str, ...] = ()

    def __init__(self, keys: KeysCollection, include_hair: bool = True, allow_missing_keys: bool = False) -> None:
        names = self.face + (("hair",) if include_hair else ())
        foreground = tuple(sorted(self.classes.index(name) for name in names))
        super().__init__(keys, foreground, len(self.classes), allow_missing_keys)


class LFWPartsToMaskd(FaceMaskd):
    """LFW Part Labels ``.ppm`` (loaded channel-first: R hair, G skin, B background) to a face mask.

    The class of a pixel is the argmax over its three colour channels; the face is skin, plus hair
    when ``include_hair``.
    """

    classes = LFW_CLASSES
    face = ("skin",)


class HelenLabelsToMaskd(FaceMaskd):
    """HELEN's 11 label images (11 channels) to a face mask: classes 1-9, plus 10 (hair) if ``include_hair``."""

    classes = HELEN_CLASSES
    face = HELEN_CLASSES[1:-1]
