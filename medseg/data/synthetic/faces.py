"""Synthetic faces with skin, hair and facial-feature labels, in the LFW Part Labels and HELEN layouts.

- :func:`make_lfw`: ``lfw_funneled/<Person>/<Person>_NNNN.jpg`` and ``parts_lfw_funneled_gt_images/<Person>_NNNN.ppm``
  (red hair, green skin, blue background) with the official ``parts_{train,validation,test}.txt`` lists.
- :func:`make_helen`: HELEN's face-parsing layout, ``images/<id>.jpg`` with 11 soft label images
  ``labels/<id>/<id>_lblNN.png`` and the ``exemplars``/``tuning``/``testing`` split lists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medseg.transforms.masks import HELEN_CLASSES, LFW_COLOURS

from .shapes import ellipse, smooth_noise

__all__ = ["make_helen", "make_lfw"]

_FIRST_NAMES = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Radia",
    "Ken",
    "Margaret",
    "Tim",
]


def _lfw_case(
    rng: np.random.Generator, size: int = 250
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """A face photo (RGB uint8), its class map (0 background, 1 skin, 2 hair) and face ellipse (cy, cx, ry, rx)."""
    shape = (size, size)
    rows, cols = np.mgrid[0:size, 0:size] / size
    bg = rng.uniform(30, 220, 3)
    img = (
        bg[None, None]
        + 40 * (rows[..., None] - 0.5) * rng.uniform(-1, 1, 3)
        + 10 * smooth_noise(rng, shape, 6)[..., None]
    )
    cy, cx = size * rng.uniform(0.46, 0.54), size * rng.uniform(0.45, 0.55)
    fy, fx = size * rng.uniform(0.20, 0.26), size * rng.uniform(0.15, 0.19)
    face = ellipse(shape, (cy, cx), (fy, fx), rng.uniform(-0.15, 0.15))
    neck = (np.abs(cols * size - cx) < fx * 0.55) & (rows * size > cy) & (rows * size < cy + fy * 1.6)
    shirt = rows * size > cy + fy * 1.45
    classes = np.zeros(shape, np.uint8)
    if rng.random() > 0.15:  # a few faces have no hair, as in LFW
        hair = ellipse(
            shape, (cy - fy * rng.uniform(0.15, 0.3), cx), (fy * rng.uniform(1.05, 1.2), fx * rng.uniform(1.15, 1.35))
        )
        hair &= rows * size < cy + fy * rng.uniform(-0.2, 0.4)
        classes[hair] = 2
        hair_colour = rng.choice([[25, 20, 18], [80, 50, 30], [200, 170, 110], [150, 150, 150]]) + rng.normal(0, 8, 3)
        img[hair] = hair_colour + 15 * smooth_noise(rng, shape, 1.0)[hair][:, None]
    skin = face | neck
    classes[skin] = 1
    tone = rng.choice([[240, 200, 170], [200, 150, 110], [140, 95, 65], [95, 65, 45]]) + rng.normal(0, 8, 3)
    img[skin] = tone * (1 - 0.15 * rows[skin][:, None])
    shirt &= ~skin & ~(classes == 2)
    img[shirt] = rng.uniform(10, 240, 3)
    for dx in (-0.4, 0.4):  # eyes and mouth are part of the face class
        img[ellipse(shape, (cy - fy * 0.2, cx + dx * fx), (fy * 0.06, fx * 0.16))] = 40
    img[ellipse(shape, (cy + fy * 0.45, cx), (fy * 0.07, fx * 0.35))] = (150, 60, 60)
    img = ndimage.gaussian_filter(img, (1.0, 1.0, 0)) + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), classes, (cy, cx, fy, fx)


def make_lfw(out_dir: str | Path, n: int = 12, seed: int = 0) -> list[Path]:
    """Write ``n`` faces in the LFW Part Labels layout; return the image paths.

    Layout: ``lfw_funneled/<Person>/<Person>_NNNN.jpg`` (250x250 RGB),
    ``parts_lfw_funneled_gt_images/<Person>_NNNN.ppm`` ((255,0,0) hair, (0,255,0) skin,
    (0,0,255) background) and the official split lists ``parts_train.txt``,
    ``parts_validation.txt`` and ``parts_test.txt`` (one ``<Person> <number>`` a line, about
    60/20/20 %).
    """
    from PIL import Image

    out = Path(out_dir)
    gt_dir = out / "parts_lfw_funneled_gt_images"
    gt_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = np.array([LFW_COLOURS["background"], LFW_COLOURS["skin"], LFW_COLOURS["hair"]], np.uint8)
    counts: dict[str, int] = {}
    entries, images = [], []
    for case in range(n):
        person = f"{_FIRST_NAMES[case % len(_FIRST_NAMES)]}_Synth{case // len(_FIRST_NAMES) + 2 * (case % 3)}"
        counts[person] = number = counts.get(person, 0) + 1
        stem = f"{person}_{number:04d}"
        img, classes, _ = _lfw_case(rng)
        (out / "lfw_funneled" / person).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="RGB").save(out / "lfw_funneled" / person / f"{stem}.jpg", quality=92)
        Image.fromarray(palette[classes], mode="RGB").save(gt_dir / f"{stem}.ppm")
        entries.append(f"{person} {number}")
        images.append(out / "lfw_funneled" / person / f"{stem}.jpg")
    n_train, n_val = round(0.6 * n), round(0.2 * n)
    splits = {
        "train": entries[:n_train],
        "validation": entries[n_train : n_train + n_val],
        "test": entries[n_train + n_val :],
    }
    for split, lines in splits.items():
        (out / f"parts_{split}.txt").write_text("".join(f"{line}\n" for line in lines))
    return images


def _helen_classes(
    rng: np.random.Generator, classes: np.ndarray, face: tuple[float, float, float, float]
) -> np.ndarray:
    """HELEN class map (``HELEN_CLASSES``) from a skin/hair map: brows, eyes, nose and lips drawn on the skin."""
    cy, cx, fy, fx = face
    shape = classes.shape
    helen = np.zeros(shape, np.uint8)
    helen[classes == 1] = HELEN_CLASSES.index("face_skin")
    helen[classes == 2] = HELEN_CLASSES.index("hair")
    # the subject's left is on the image's right
    for side, brow, eye in ((1, "left_eyebrow", "left_eye"), (-1, "right_eyebrow", "right_eye")):
        x = cx + side * 0.4 * fx
        helen[ellipse(shape, (cy - fy * rng.uniform(0.36, 0.42), x), (fy * 0.05, fx * 0.2))] = HELEN_CLASSES.index(brow)
        helen[ellipse(shape, (cy - fy * 0.2, x), (fy * 0.07, fx * 0.16))] = HELEN_CLASSES.index(eye)
    helen[ellipse(shape, (cy + fy * 0.1, cx), (fy * 0.17, fx * 0.1))] = HELEN_CLASSES.index("nose")
    mouth_y, mouth_rx = cy + fy * 0.45, fx * rng.uniform(0.3, 0.4)
    helen[ellipse(shape, (mouth_y - fy * 0.04, cx), (fy * 0.05, mouth_rx))] = HELEN_CLASSES.index("upper_lip")
    helen[ellipse(shape, (mouth_y + fy * 0.05, cx), (fy * 0.06, mouth_rx * 0.9))] = HELEN_CLASSES.index("lower_lip")
    helen[ellipse(shape, (mouth_y, cx), (fy * 0.02, mouth_rx * 0.8))] = HELEN_CLASSES.index("inner_mouth")
    return helen


def make_helen(out_dir: str | Path, n: int = 6, seed: int = 0, sizes: tuple[int, int] = (200, 300)) -> list[Path]:
    """Write ``n`` faces in HELEN's face-parsing layout (Smith et al. 2013); return the image paths.

    Layout: ``images/<photo>_<face>.jpg`` (RGB, square, side drawn in ``sizes``), one soft label
    image per class ``labels/<id>/<id>_lbl00.png ... _lbl10.png`` (grey levels 0-255, anti-aliased
    edges, so that the class of a pixel is the argmax over the 11 images), and the split lists
    ``exemplars.txt``, ``tuning.txt``, ``testing.txt`` (``<n> , <id>`` lines, about 60/20/20 %).
    """
    from PIL import Image

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids, images = [], []
    for case in range(n):
        size = int(rng.integers(sizes[0], sizes[1] + 1))
        img, classes, face = _lfw_case(rng, size)
        helen = _helen_classes(rng, classes, face)
        face_id = f"{int(rng.integers(10**8, 10**9))}_{case % 3 + 1}"
        Image.fromarray(img, mode="RGB").save(out / "images" / f"{face_id}.jpg", quality=92)
        (out / "labels" / face_id).mkdir(parents=True, exist_ok=True)
        for c in range(len(HELEN_CLASSES)):
            soft = ndimage.gaussian_filter((helen == c).astype(float), 0.8) * 255
            Image.fromarray(np.round(soft).astype(np.uint8), mode="L").save(
                out / "labels" / face_id / f"{face_id}_lbl{c:02d}.png"
            )
        ids.append(face_id)
        images.append(out / "images" / f"{face_id}.jpg")
    n_train, n_val = round(0.6 * n), round(0.2 * n)
    lists = {
        "exemplars.txt": ids[:n_train],
        "tuning.txt": ids[n_train : n_train + n_val],
        "testing.txt": ids[n_train + n_val :],
    }
    for name, members in lists.items():
        (out / name).write_text("".join(f"{i + 1} , {face_id}\n" for i, face_id in enumerate(members)))
    return images
