"""Synthetic chest radiographs with lung masks, in the Montgomery, Shenzhen and DICOM-folder layouts.

- :func:`make_cxr`: Montgomery County, ``CXR_png/MCUCXR_NNNN_0.png`` with ``ManualMask/leftMask/`` and
  ``ManualMask/rightMask/``.
- :func:`make_shenzhen`: Shenzhen, ``CXR_png/CHNCXR_NNNN_D.png`` with ``masks/CHNCXR_NNNN_D_mask.png``.
- :func:`make_cxr_dicom`: a generic ``images/`` + ``masks/`` folder pair of single-frame DICOM radiographs
  (12-bit, Digital X-Ray storage) and PNG lung masks.

All three draw their radiographs with the same generator: the same seed gives the same anatomy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import ndimage

from .dicom import uid, write_dicom
from .shapes import ellipse, smooth_noise

__all__ = ["make_cxr", "make_cxr_dicom", "make_shenzhen"]


def _cxr_case(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a radiograph (uint8) and the patient's left and right lung masks (bool)."""
    h, w = shape
    img = np.full(shape, 0.06)
    body = ellipse(shape, (h * rng.uniform(0.52, 0.6), w / 2), (h * 0.62, w * rng.uniform(0.42, 0.48)))
    img[body] = 0.55
    lungs = {}
    for side, name in ((-1, "right"), (1, "left")):  # radiological view: patient's right on image left
        cy = h * rng.uniform(0.40, 0.50)
        cx = w / 2 + side * w * rng.uniform(0.15, 0.21)
        ry, rx = h * rng.uniform(0.22, 0.31), w * rng.uniform(0.09, 0.14)
        lung = ellipse(shape, (cy, cx), (ry, rx), side * rng.uniform(0.0, 0.25))
        lung |= ellipse(
            shape, (cy + ry * 0.35, cx + side * rx * 0.15), (ry * 0.7, rx * 1.12), side * rng.uniform(-0.1, 0.2)
        )
        lungs[name] = lung & body
    heart = ellipse(
        shape,
        (h * rng.uniform(0.62, 0.7), w * rng.uniform(0.52, 0.58)),
        (h * rng.uniform(0.1, 0.15), w * rng.uniform(0.1, 0.15)),
    )
    lungs["left"] &= ~heart
    both = lungs["left"] | lungs["right"]
    rows = np.arange(h)[:, None] / h
    # lungs darken towards the apex and brighten towards the diaphragm, with vessel markings
    img[both] = (rng.uniform(0.22, 0.34) + 0.15 * rows * np.ones((1, w)))[both]
    img += 0.05 * smooth_noise(rng, shape, 2.0) * both
    ribs = np.sin(
        rows * np.pi * rng.uniform(16, 24) + rng.uniform(0, np.pi) + 0.8 * np.abs(np.arange(w)[None, :] / w - 0.5)
    )
    thorax = ndimage.binary_dilation(both, iterations=max(1, int(w * 0.05))) & body
    img += rng.uniform(0.06, 0.12) * (ribs > 0.3) * thorax
    img[heart & body] = rng.uniform(0.5, 0.62)
    spine = (np.abs(np.arange(w)[None, :] - w / 2) < w * 0.035) & body
    img[spine] = 0.7
    img = ndimage.gaussian_filter(img, rng.uniform(1.0, 2.5))
    img += 0.08 * smooth_noise(rng, shape, min(h, w) / 6) + rng.normal(0, 0.035, shape)  # bias field, noise
    img = np.clip(img, 0, 1) ** rng.uniform(0.7, 1.4)  # exposure differs between radiographs
    return (img * 255).astype(np.uint8), lungs["left"], lungs["right"]


def _radiographs(
    rng: np.random.Generator, n: int, size: tuple[int, int]
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """``(case, radiograph, left lung, right lung)`` for ``n`` cases, height and width drawn in ``size``."""
    for case in range(n):
        shape = int(rng.integers(size[0], size[1] + 1)), int(rng.integers(size[0] - 32, size[1] - 31))
        yield case, *_cxr_case(rng, shape)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8) * (255 if array.dtype == bool else 1), mode="L").save(path)


def make_cxr(out_dir: str | Path, n: int = 8, seed: int = 0, size: tuple[int, int] = (256, 320)) -> list[Path]:
    """Write ``n`` chest radiographs in the Montgomery layout; return the image paths.

    Layout: ``CXR_png/MCUCXR_NNNN_0.png`` (8-bit grey, height and width drawn in ``size``) with the
    patient's left and right lungs in ``ManualMask/leftMask/`` and ``ManualMask/rightMask/`` under
    the same file name (0 background, 255 lung).
    """
    out = Path(out_dir)
    images = []
    for case, img, left, right in _radiographs(np.random.default_rng(seed), n, size):
        name = f"MCUCXR_{case:04d}_0.png"
        _save_png(img, out / "CXR_png" / name)
        _save_png(left, out / "ManualMask" / "leftMask" / name)
        _save_png(right, out / "ManualMask" / "rightMask" / name)
        images.append(out / "CXR_png" / name)
    return images


def make_shenzhen(out_dir: str | Path, n: int = 8, seed: int = 0, size: tuple[int, int] = (256, 320)) -> list[Path]:
    """Write ``n`` chest radiographs in the Shenzhen layout; return the image paths.

    Layout: ``CXR_png/CHNCXR_NNNN_D.png`` (8-bit grey; D is 0 for normal, 1 for abnormal) with one
    mask of both lungs (0/255) per image in ``masks/CHNCXR_NNNN_D_mask.png``.
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    images = []
    for case, img, left, right in _radiographs(rng, n, size):
        stem = f"CHNCXR_{case + 1:04d}_{int(rng.random() < 0.5)}"
        _save_png(img, out / "CXR_png" / f"{stem}.png")
        _save_png(left | right, out / "masks" / f"{stem}_mask.png")
        images.append(out / "CXR_png" / f"{stem}.png")
    return images


def make_cxr_dicom(out_dir: str | Path, n: int = 4, seed: int = 0, size: tuple[int, int] = (256, 320)) -> list[Path]:
    """Write ``n`` single-frame DICOM chest radiographs and PNG lung masks; return the image paths.

    Layout: ``images/CXR_NNNN.dcm`` (Digital X-Ray Image Storage, MONOCHROME2, 12 bits stored in
    16, values 0-4095) and ``masks/CXR_NNNN.png`` (both lungs, 0/255) of the same size.
    """
    from pydicom.uid import PYDICOM_ROOT_UID, DigitalXRayImageStorageForPresentation

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = []
    for case, img, left, right in _radiographs(rng, n, size):
        path = out / "images" / f"CXR_{case:04d}.dcm"
        write_dicom(
            path,
            img.astype(np.uint16) * 16 + rng.integers(0, 16, img.shape, dtype=np.uint16),
            DigitalXRayImageStorageForPresentation,
            uid(PYDICOM_ROOT_UID, seed, "cxr", case),
            bits_stored=12,
            PatientID=f"SYNTH{seed:03d}{case:03d}",
            PatientName=f"Synthetic^{case}",
            Modality="DX",
            StudyInstanceUID=uid(PYDICOM_ROOT_UID, seed, "cxr-study", case),
            SeriesInstanceUID=uid(PYDICOM_ROOT_UID, seed, "cxr-series", case),
            ImagerPixelSpacing=[0.35, 0.35],
            PixelSpacing=[0.35, 0.35],
        )
        _save_png(left | right, out / "masks" / f"CXR_{case:04d}.png")
        images.append(path)
    return images
