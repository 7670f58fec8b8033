"""Ground-truth mask decoders that MONAI does not provide, and the label tables of the datasets.

- :class:`MergeMasks`: channels (e.g. Montgomery's left and right lung masks) merged into one
  binary mask, binarised at half the mask's maximum (or the midpoint of its levels, or a value).
- :class:`ArgmaxToLabels`: one channel per class (LFW's colour channels, HELEN's label images) to a
  class map by the argmax over channels, then to a model's labels: one binary mask, or one-hot masks of
  several labels (each a group of classes). :class:`LFWPartsToLabelsd` and :class:`HelenLabelsToLabelsd`
  (:class:`FaceLabelsd`) name the classes of the two face datasets.

LUNA16's label values are mapped with MONAI's own ``MapLabelValued`` (see
:func:`medseg.transforms.lung_label_map`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import AsDiscrete, MapTransform, Transform
from monai.utils import TransformBackends, convert_to_tensor

__all__ = [
    "HELEN_CLASSES",
    "LFW_CLASSES",
    "LFW_COLOURS",
    "LUNA16_LABELS",
    "MASK_THRESHOLDS",
    "ArgmaxToLabels",
    "ArgmaxToLabelsd",
    "FaceLabelsd",
    "HelenLabelsToLabelsd",
    "LFWPartsToLabelsd",
    "MergeMasks",
    "MergeMasksd",
    "OneHotOrBinary",
    "OneHotOrBinaryd",
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


class ArgmaxToLabels(Transform):
    """Channel-per-class label image to the labels of a model: groups of classes, each one label.

    ``class = argmax over channels`` (the first channel wins ties, so a pixel where every channel is zero is class
    0); a pixel belongs to label ``i`` when its class is in ``labels[i]``. One label gives a binary mask, one channel
    of float 0/1 (a model with one output map); several give one-hot channels, background first (a model with
    ``len(labels) + 1`` output maps and a softmax). MONAI's ``AsDiscrete(argmax=True)`` followed by ``MapLabelValue``
    and ``AsDiscrete(to_onehot=...)`` would do the same in three passes with a per-image label table.

    Args:
        labels: for each label, the class (channel) indices it covers; no class in two labels.
        num_classes: when given, the number of channels the input must have.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, labels: Sequence[Sequence[int]], num_classes: int | None = None) -> None:
        groups = [tuple(int(c) for c in group) for group in labels]
        if not groups or not all(groups):
            raise ValueError(f"ArgmaxToLabels: labels must be non-empty groups of classes, got {labels!r}")
        flat = [c for group in groups for c in group]
        if len(set(flat)) != len(flat):
            raise ValueError(f"ArgmaxToLabels: a class is in two labels: {labels!r}")
        self.labels, self.num_classes = groups, num_classes

    def __call__(self, image: NdarrayOrTensor) -> torch.Tensor:
        image = convert_to_tensor(image, track_meta=get_track_meta())
        channels = image.shape[0]
        if self.num_classes is not None and channels != self.num_classes:
            raise ValueError(
                f"ArgmaxToLabels: expected {self.num_classes} channels (one per class), got shape {tuple(image.shape)}"
            )
        highest = max(c for group in self.labels for c in group)
        if highest >= channels:
            raise ValueError(
                f"ArgmaxToLabels: classes up to {highest} exceed the {channels} channels of shape {tuple(image.shape)}"
            )
        classes = image.argmax(dim=0, keepdim=True)
        masks = [torch.isin(classes, torch.tensor(group, device=classes.device)) for group in self.labels]
        if len(masks) == 1:
            return masks[0].to(torch.float32)
        return torch.cat([~torch.stack(masks).any(dim=0), *masks]).to(torch.float32)


class ArgmaxToLabelsd(MapTransform):
    """Dictionary-based :class:`ArgmaxToLabels`."""

    backend = ArgmaxToLabels.backend

    def __init__(
        self,
        keys: KeysCollection,
        labels: Sequence[Sequence[int]],
        num_classes: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.decoder = ArgmaxToLabels(labels, num_classes)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.decoder(d[key])
        return d


class FaceLabelsd(ArgmaxToLabelsd):
    """A face dataset's channel-per-class label image to a model's labels, given by class names.

    Van Beers et al. segment the face both with the hair (face = skin + hair, as in the capsule IoU paper) and
    without it (hair as background); face parsing segments hair and skin apart. Subclasses name the dataset's
    classes in channel order (:attr:`classes`).

    Args:
        labels: for each label, the names of the classes it covers, e.g. ``(("skin", "hair"),)`` (the face) or
            ``(("hair",), ("skin",))`` (two labels).
    """

    classes: tuple[str, ...] = ()

    def __init__(self, keys: KeysCollection, labels: Sequence[Sequence[str]], allow_missing_keys: bool = False) -> None:
        unknown = sorted({name for group in labels for name in group} - set(self.classes))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown classes {unknown}; the classes are {self.classes}")
        groups = [sorted(self.classes.index(name) for name in group) for group in labels]
        super().__init__(keys, groups, len(self.classes), allow_missing_keys)


class LFWPartsToLabelsd(FaceLabelsd):
    """LFW Part Labels ``.ppm`` (loaded channel-first: R hair, G skin, B background) to a model's labels: the class
    of a pixel is the argmax over its three colour channels."""

    classes = LFW_CLASSES


class HelenLabelsToLabelsd(FaceLabelsd):
    """HELEN's 11 label images (11 channels, soft) to a model's labels: the class of a pixel is the argmax."""

    classes = HELEN_CLASSES


class OneHotOrBinary(Transform):
    """Soft label channels (after interpolation or area averaging) made hard again: one channel (a binary mask) is
    thresholded at 0.5, several (one-hot labels, background first) become the one-hot of their argmax, so that every
    pixel keeps exactly one label: MONAI's ``AsDiscrete(threshold=0.5)`` or ``AsDiscrete(argmax=True, to_onehot=C)``
    by the number of channels, which MONAI's transform cannot choose itself."""

    backend = [TransformBackends.TORCH]

    def __call__(self, label: NdarrayOrTensor) -> torch.Tensor:
        label = convert_to_tensor(label, track_meta=get_track_meta())
        channels = label.shape[0]
        hard = AsDiscrete(threshold=0.5) if channels == 1 else AsDiscrete(argmax=True, to_onehot=channels)
        return hard(label).to(torch.float32)


class OneHotOrBinaryd(MapTransform):
    """Dictionary-based :class:`OneHotOrBinary`."""

    backend = OneHotOrBinary.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.hard = OneHotOrBinary()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.hard(d[key])
        return d
