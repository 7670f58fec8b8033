"""Intensity transforms MONAI does not provide: RGB to grey, grey levels of any bit depth to [0, 1], and
salt-and-pepper noise."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, RandomizableTransform, ScaleIntensity, ScaleIntensityRange, Transform
from monai.utils import TransformBackends, convert_to_tensor

__all__ = [
    "RandSaltAndPepper",
    "RandSaltAndPepperd",
    "ScaleGreyLevels",
    "ScaleGreyLevelsd",
    "ToGreyscale",
    "ToGreyscaled",
]


class ToGreyscale(Transform):
    """Channel-first RGB (or RGBA, alpha ignored) image to one grey channel; one-channel images pass unchanged.

    ``grey = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601 luma, the weights of Pillow's ``"L"``
    mode and of scikit-image's ``rgb2gray`` predecessor), so a loaded RGB file gives the same grey
    levels as converting it with Pillow, up to Pillow's rounding to integers.
    """

    backend = [TransformBackends.TORCH]
    weights = (0.299, 0.587, 0.114)

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if img.shape[0] == 1:
            return img
        if img.shape[0] not in (3, 4):
            raise ValueError(f"ToGreyscale: expected 1, 3 or 4 channels first, got shape {tuple(img.shape)}")
        weights = torch.tensor(self.weights, dtype=torch.float32, device=img.device).reshape(3, *([1] * (img.ndim - 1)))
        return (img[:3].to(torch.float32) * weights).sum(dim=0, keepdim=True)


class ToGreyscaled(MapTransform):
    """Dictionary-based :class:`ToGreyscale`."""

    backend = ToGreyscale.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = ToGreyscale()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
        return d


class ScaleGreyLevels(Transform):
    """Grey levels to [0, 1] whatever the bit depth: 8-bit images by the full 8-bit range, deeper ones by their own,
    a DICOM image by the range its reader says is shown black to white.

    An image whose values all lie in ``[low, high]`` (by default 0-255: an 8-bit PNG, JPEG or DICOM) is mapped
    with MONAI's ``ScaleIntensityRange(low, high, 0, 1)``, so that a grey level means the same in every image,
    as the networks were trained. An image with values outside that range (a 12- or 16-bit DICOM or PNG
    radiograph, whose bits stored vary by device) is mapped from its own minimum and maximum with MONAI's
    ``ScaleIntensity(0, 1)``; a fixed 0-255 mapping would clip most of such an image to white. This extends the
    two MONAI transforms by choosing between them per image. A dark 8-bit image keeps ``x / 255`` (it is not
    stretched to its own range); a deeper PNG whose values happen to stay within 0-255 is taken as 8-bit.

    A ``MetaTensor`` whose ``meta["grey_range"]`` holds ``(black, white)`` (set by
    :class:`~medseg.transforms.io.RadiographReader`: a DICOM window, the stored bit range of an 8-bit image, or a
    deep image's own range) is mapped from that range instead, so that a 12-bit film whose grey levels all happen to
    lie within 0-255 is not taken for an 8-bit one; the entry is consumed (images of other readers lack it).
    """

    backend = ScaleIntensity.backend

    def __init__(self, low: float = 0.0, high: float = 255.0) -> None:
        self.low, self.high = low, high
        self.fixed = ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)
        self.own_range = ScaleIntensity(minv=0.0, maxv=1.0)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        shown = img.meta.pop("grey_range", None) if isinstance(img, MetaTensor) else None
        if shown is not None:
            black, white = (float(value) for value in np.asarray(shown))
            if white > black:
                return ScaleIntensityRange(a_min=black, a_max=white, b_min=0.0, b_max=1.0, clip=True)(img)
            return self.own_range(img)
        within = bool(img.min() >= self.low) and bool(img.max() <= self.high)
        return self.fixed(img) if within else self.own_range(img)


class ScaleGreyLevelsd(MapTransform):
    """Dictionary-based :class:`ScaleGreyLevels`."""

    backend = ScaleGreyLevels.backend

    def __init__(
        self, keys: KeysCollection, low: float = 0.0, high: float = 255.0, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.scaler = ScaleGreyLevels(low, high)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.scaler(d[key])
        return d


class RandSaltAndPepper(RandomizableTransform):
    """Salt-and-pepper noise as scikit-image's ``random_noise(mode="s&p")``, used by SegCaps.

    With probability ``prob``, each element of the image is replaced with probability ``amount``;
    a replaced element becomes ``salt`` with probability ``salt_vs_pepper`` and ``pepper``
    otherwise. Channels are drawn independently, as in scikit-image. The defaults are the capsule
    papers' (LaLonde & Bagci 2018; van Beers): salt share 0.2, amount 0.04, on images in [0, 1].

    SegCaps' own code replaces ``ceil(amount * rows * share)`` random pixels (``rows``, not
    ``rows * cols``: far fewer than 4 %); this follows scikit-image's definition, which the papers cite.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        prob: float = 0.1,
        amount: float = 0.04,
        salt_vs_pepper: float = 0.2,
        salt: float = 1.0,
        pepper: float = 0.0,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if not 0.0 <= amount <= 1.0 or not 0.0 <= salt_vs_pepper <= 1.0:
            raise ValueError(
                f"RandSaltAndPepper: amount and salt_vs_pepper must be in [0, 1], got {amount}, {salt_vs_pepper}"
            )
        self.amount = amount
        self.salt_vs_pepper = salt_vs_pepper
        self.salt = salt
        self.pepper = pepper
        self._salted: np.ndarray | None = None
        self._peppered: np.ndarray | None = None

    def randomize(self, shape: tuple[int, ...]) -> None:  # type: ignore[override]
        super().randomize(None)
        if not self._do_transform:
            return
        flipped = self.R.random_sample(shape) < self.amount
        salted = self.R.random_sample(shape) < self.salt_vs_pepper
        self._salted, self._peppered = flipped & salted, flipped & ~salted

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> torch.Tensor:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if randomize:
            self.randomize(tuple(img.shape))
        if not self._do_transform:
            return img
        if self._salted is None or self._salted.shape != tuple(img.shape):
            raise RuntimeError(f"RandSaltAndPepper: randomize() was called for another shape than {tuple(img.shape)}")
        out = img.clone()
        out[torch.as_tensor(self._salted, device=img.device)] = self.salt
        out[torch.as_tensor(self._peppered, device=img.device)] = self.pepper
        return out


class RandSaltAndPepperd(RandomizableTransform, MapTransform):
    """Dictionary-based :class:`RandSaltAndPepper`: apply it to the image keys only (never to a mask).

    All keys share one noise pattern, so they must have the same shape.
    """

    backend = RandSaltAndPepper.backend

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        amount: float = 0.04,
        salt_vs_pepper: float = 0.2,
        salt: float = 1.0,
        pepper: float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.noise = RandSaltAndPepper(1.0, amount, salt_vs_pepper, salt, pepper)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandSaltAndPepperd:
        super().set_random_state(seed, state)
        self.noise.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        first = self.first_key(d)
        if not self._do_transform or first == ():
            return d
        self.noise.randomize(tuple(d[first].shape))
        for key in self.key_iterator(d):
            d[key] = self.noise(d[key], randomize=False)
        return d
