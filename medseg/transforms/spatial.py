"""Simard's elastic deformation in 2D, with SegCaps' random affine: the one spatial transform MONAI lacks.

MONAI's ``Rand2DElastic`` displaces a coarse grid of control points and interpolates it (not
Simard's formulation), and its ``Rand3DElastic``, which does smooth a dense random field with a
Gaussian, is 3D only. :class:`Rand2DSimardElastic` draws, for every pixel ``p`` and axis ``c``,

    ``d_c(p) = alpha * (G_sigma * U_c)(p)``,  ``U_c ~ uniform(-1, 1)`` i.i.d.

(Simard, Steinkraus & Platt, ICDAR 2003), and, as SegCaps' ``elastic_transform`` does first, a
random affine ``A`` that moves three points around the centre (at ``+-min(size) // 3``) by up to
``affine_range`` pixels each. The output is ``out(p) = in(A^-1(p + d(p)))``, sampled bilinearly with
zeros outside by MONAI's ``Resample``, so image and mask share one sampling grid. The Gaussian is
cut at ``truncate * sigma`` (2, the width of SegCaps' OpenCV kernel ``int(4 * sigma) | 1``) with
mirrored borders (OpenCV's default). SegCaps' defaults: ``alpha = 1000``, ``sigma = 80``,
``affine_range = 50``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, RandomizableTransform, Resample
from monai.utils import GridSampleMode, GridSamplePadMode, convert_to_tensor, ensure_tuple_rep
from scipy import ndimage

__all__ = ["Rand2DSimardElastic", "Rand2DSimardElasticd", "affine_from_points"]


def affine_from_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 3x3 homogeneous affine that maps three 2D points ``source`` (3, 2) onto ``target`` (3, 2)."""
    homogeneous = np.hstack([source, np.ones((3, 1))])
    linear = np.linalg.solve(homogeneous, target)  # homogeneous @ linear = target
    return np.vstack([linear.T, [0.0, 0.0, 1.0]])


class Rand2DSimardElastic(RandomizableTransform):
    """Random 2D elastic deformation (Simard et al. 2003) after a random affine, as SegCaps augments.

    Args:
        alpha: scale of the displacement field, pixels.
        sigma: standard deviation of the Gaussian that smooths the random field, pixels.
        affine_range: each of the three affine control points moves by ``uniform(-r, r)`` pixels
            per axis; 0 disables the affine.
        prob: probability of deforming.
        truncate: the Gaussian is cut at ``truncate * sigma``.
        mode, padding_mode: interpolation and padding of MONAI's ``Resample``.
    """

    backend = Resample.backend

    def __init__(
        self,
        alpha: float = 1000.0,
        sigma: float = 80.0,
        affine_range: float = 50.0,
        prob: float = 0.1,
        truncate: float = 2.0,
        mode: str = GridSampleMode.BILINEAR,
        padding_mode: str = GridSamplePadMode.ZEROS,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.alpha, self.sigma, self.affine_range, self.truncate = alpha, sigma, affine_range, truncate
        self.mode, self.padding_mode = mode, padding_mode
        self.resampler = Resample(norm_coords=True)
        self.noise: np.ndarray | None = None
        self.point_shift: np.ndarray | None = None

    def randomize(self, spatial_size: Sequence[int]) -> None:  # type: ignore[override]
        super().randomize(None)
        if not self._do_transform:
            return
        self.noise = self.R.uniform(-1.0, 1.0, (2, *spatial_size))
        self.point_shift = self.R.uniform(-self.affine_range, self.affine_range, (3, 2))

    def displacement(self) -> np.ndarray:
        """The drawn displacement field ``d`` (2, H, W), pixels."""
        if self.noise is None:
            raise RuntimeError("Rand2DSimardElastic: call randomize() first")
        return np.stack(
            [
                ndimage.gaussian_filter(u, self.sigma, mode="mirror", truncate=self.truncate) * self.alpha
                for u in self.noise
            ]
        )

    def affine(self, spatial_size: Sequence[int]) -> np.ndarray:
        """The drawn affine ``A`` (3x3, array-index coordinates), SegCaps' three-point construction."""
        if self.point_shift is None:
            raise RuntimeError("Rand2DSimardElastic: call randomize() first")
        centre = np.array(spatial_size, float) // 2
        half = min(spatial_size) // 3
        points = np.array([centre + half, [centre[0] + half, centre[1] - half], centre - half])
        return affine_from_points(points, points + self.point_shift)

    def sampling_grid(self, spatial_size: Sequence[int]) -> torch.Tensor:
        """MONAI ``Resample`` grid (3, H, W): the input location ``A^-1(p + d(p))`` of each output pixel, centred."""
        size = tuple(int(s) for s in spatial_size)
        if self.noise is None or self.noise.shape[1:] != size:
            raise RuntimeError(f"Rand2DSimardElastic: randomize() was called for another size than {size}")
        index = np.stack(np.meshgrid(*[np.arange(s, dtype=float) for s in size], indexing="ij"))
        moved = (index + self.displacement()).reshape(2, -1)
        source = np.linalg.inv(self.affine(size)) @ np.vstack([moved, np.ones((1, moved.shape[1]))])
        centred = source[:2] - ((np.array(size, float) - 1) / 2)[:, None]
        grid = np.vstack([centred, np.ones((1, centred.shape[1]))]).reshape(3, *size)
        return torch.as_tensor(grid, dtype=torch.float32)

    def __call__(
        self, img: NdarrayOrTensor, mode: str | None = None, padding_mode: str | None = None, randomize: bool = True
    ) -> torch.Tensor:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if img.ndim != 3:
            raise ValueError(
                f"Rand2DSimardElastic: expected a channel-first 2D image (C, H, W), got shape {tuple(img.shape)}"
            )
        if randomize:
            self.randomize(img.shape[1:])
        if not self._do_transform:
            return img
        grid = self.sampling_grid(img.shape[1:]).to(img.device)
        return self.resampler(img, grid, mode=mode or self.mode, padding_mode=padding_mode or self.padding_mode)


class Rand2DSimardElasticd(RandomizableTransform, MapTransform):
    """Dictionary-based :class:`Rand2DSimardElastic`: every key is deformed with the same field and affine.

    ``mode`` and ``padding_mode`` may be given per key.
    """

    backend = Rand2DSimardElastic.backend

    def __init__(
        self,
        keys: KeysCollection,
        alpha: float = 1000.0,
        sigma: float = 80.0,
        affine_range: float = 50.0,
        prob: float = 0.1,
        truncate: float = 2.0,
        mode: str | Sequence[str] = GridSampleMode.BILINEAR,
        padding_mode: str | Sequence[str] = GridSamplePadMode.ZEROS,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.elastic = Rand2DSimardElastic(alpha, sigma, affine_range, 1.0, truncate)
        self.mode = ensure_tuple_rep(mode, len(self.keys))
        self.padding_mode = ensure_tuple_rep(padding_mode, len(self.keys))

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> Rand2DSimardElasticd:
        super().set_random_state(seed, state)
        self.elastic.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        first = self.first_key(d)
        if not self._do_transform or first == ():
            return d
        self.elastic.randomize(d[first].shape[1:])
        for key, mode, padding_mode in self.key_iterator(d, self.mode, self.padding_mode):
            d[key] = self.elastic(d[key], mode=mode, padding_mode=padding_mode, randomize=False)
        return d
