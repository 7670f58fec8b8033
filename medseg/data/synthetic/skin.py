"""Synthetic dermoscopy images with lesion masks, in the ISIC 2017 (shared subset) and PH2 layouts.

Each image is skin of a random tone and illumination, seen through a dermoscope's round field (dark corners), with
one pigmented lesion: an irregular blob (an ellipse whose border is bent by smooth noise) of a random size, place,
colour and texture, darker at its centre, sometimes crossed by hairs. The lesion mask is the blob.

- :func:`make_isic`: ``trainx/imgxN.jpg`` with ``trainy/imgyN.jpg`` (greyscale JPEG masks, compression noise at the
  edges as in the shared subset) and, for every fourth case, ``validationx/`` with ``validationy/``; 256×192.
- :func:`make_ph2`: ``IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp`` with ``IMDnnn/IMDnnn_lesion/IMDnnn_lesion.bmp``,
  the masks alternately 24-bit and 1-bit BMP, as both occur in PH2; 768×560.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .shapes import smooth_noise

__all__ = ["make_isic", "make_ph2", "skin_case"]


def skin_case(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A dermoscopy image (RGB uint8, ``(height, width, 3)``) and its lesion mask (bool)."""
    shape = (height, width)
    rows, cols = np.mgrid[0:height, 0:width].astype(float)
    tone = rng.choice([[235, 190, 170], [215, 160, 135], [180, 125, 100], [140, 95, 70]]) + rng.normal(0, 10, 3)
    light = 1 + 0.15 * smooth_noise(rng, shape, min(shape) / 5)
    image = tone[None, None] * light[..., None] + 6 * smooth_noise(rng, shape, 1.5)[..., None]
    size = min(shape) * rng.uniform(0.12, 0.42)
    centre = (height * rng.uniform(0.35, 0.65), width * rng.uniform(0.35, 0.65))
    radii = (size * rng.uniform(0.7, 1.0), size * rng.uniform(0.8, 1.3))
    angle = rng.uniform(0, np.pi)
    dy, dx = rows - centre[0], cols - centre[1]
    u = (np.cos(angle) * dy + np.sin(angle) * dx) / radii[0]
    v = (-np.sin(angle) * dy + np.cos(angle) * dx) / radii[1]
    distance = np.sqrt(u**2 + v**2) + 0.25 * smooth_noise(rng, shape, size / 4)  # an irregular border
    labels, count = ndimage.label(distance <= max(1.0, distance.min() + 0.05))  # never empty
    lesion = ndimage.binary_fill_holes(
        labels == 1 + np.argmax(ndimage.sum_labels(labels > 0, labels, range(1, count + 1)))
    )
    pigment = rng.choice([[110, 70, 45], [70, 45, 35], [150, 95, 70], [90, 60, 80]]) + rng.normal(0, 8, 3)
    depth = (
        np.clip(1.6 - distance, 0.5, 1)[..., None] * np.clip(0.85 + 0.15 * smooth_noise(rng, shape, 3), 0, 1)[..., None]
    )
    image = np.where(lesion[..., None], image * (1 - 0.85 * depth) + pigment * 0.85 * depth, image)
    for _ in range(rng.integers(0, 6)):  # hairs: dark curved lines across the image
        y0, x0, y1, x1 = rng.uniform(0, 1, 4) * [height, width, height, width]
        t = np.linspace(0, 1, 4 * max(shape))
        ys = y0 + (y1 - y0) * t + rng.uniform(-20, 20) * np.sin(np.pi * t)
        xs = x0 + (x1 - x0) * t
        inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
        hair = np.zeros(shape, bool)
        hair[ys[inside].astype(int), xs[inside].astype(int)] = True
        thick = int(rng.integers(0, 2))  # (binary_dilation's iterations=0 would grow the hair over the image)
        image[ndimage.binary_dilation(hair, iterations=thick) if thick else hair] = rng.uniform(20, 60)
    field = np.hypot((rows - height / 2) / (height / 2), (cols - width / 2) / (width / 2))
    image *= np.clip(1.35 - 0.6 * field, 0.05, 1)[..., None]  # the dermoscope's round field
    image = ndimage.gaussian_filter(image, (0.8, 0.8, 0)) + rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), lesion


def make_isic(out_dir: str | Path, n: int = 8, seed: int = 0) -> list[Path]:
    """Write ``n`` cases in the shared ISIC 2017 layout (256×192 JPEG images and masks); every fourth case is a
    validation case. Returns the image paths."""
    out, rng = Path(out_dir), np.random.default_rng(seed)
    written = []
    for k in range(n):
        images, masks = ("validationx", "validationy") if k % 4 == 3 else ("trainx", "trainy")
        (out / images).mkdir(parents=True, exist_ok=True)
        (out / masks).mkdir(parents=True, exist_ok=True)
        image, lesion = skin_case(rng, 192, 256)
        path = out / images / f"imgx{k + 1}.jpg"
        Image.fromarray(image).save(path, quality=92)
        Image.fromarray((lesion * 255).astype(np.uint8)).save(out / masks / f"imgy{k + 1}.jpg", quality=92)
        written.append(path)
    return written


def make_ph2(out_dir: str | Path, n: int = 8, seed: int = 0) -> list[Path]:
    """Write ``n`` cases in the PH2 layout (768×560 BMP images; masks 24-bit for even cases, 1-bit for odd ones).
    Returns the image paths."""
    out, rng = Path(out_dir), np.random.default_rng(seed)
    written = []
    for k in range(n):
        name = f"IMD{k + 2:03d}"
        case = out / name
        (case / f"{name}_Dermoscopic_Image").mkdir(parents=True, exist_ok=True)
        (case / f"{name}_lesion").mkdir(parents=True, exist_ok=True)
        image, lesion = skin_case(rng, 560, 768)
        path = case / f"{name}_Dermoscopic_Image" / f"{name}.bmp"
        Image.fromarray(image).save(path)
        mask = Image.fromarray((lesion * 255).astype(np.uint8))
        (mask.convert("RGB") if k % 2 == 0 else mask.convert("1")).save(case / f"{name}_lesion" / f"{name}_lesion.bmp")
        written.append(path)
    return written
