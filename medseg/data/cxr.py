"""Chest X-ray lung datasets as MONAI datalists.

Layouts:

- **Montgomery County** (NLM): ``CXR_png/MCUCXR_NNNN_D.png`` with the patient's left and right lung
  in ``ManualMask/leftMask/`` and ``ManualMask/rightMask/`` under the same name. Each entry's
  ``label`` lists both masks; :class:`medseg.transforms.MergeMasksd` merges them into one lung mask
  after loading.
- **Shenzhen** (NLM, masks from the Shenzhen lung-mask release): ``CXR_png/CHNCXR_NNNN_D.png`` with
  ``masks/CHNCXR_NNNN_D_mask.png`` (or ``mask/``).
- **Any folder**: images (PNG, JPEG or single-frame DICOM) with masks named by a rule, in the same
  folder (``"{stem}@.png"``, as in the OpenIST set, or ``"{stem}_mask.png"``) or in another one
  (``"masks/{stem}.png"``); see :func:`medseg.data.layout.folder_datalist`.

Masks are binarised at half their maximum by the chest X-ray pre-processing
(:func:`medseg.transforms.cxr_transforms`).
"""

from __future__ import annotations

import re
from pathlib import Path

from .layout import (
    IMAGE_SUFFIXES_2D,
    BadPair,
    LayoutError,
    detect_sibling_masks,
    folder_datalist,
    reject_pair,
    split_suffix,
)

__all__ = [
    "CXR_LAYOUTS",
    "cxr_datalist",
    "detect_cxr_layout",
    "montgomery_datalist",
    "shenzhen_datalist",
]

#: Layouts :func:`cxr_datalist` knows; ``"auto"`` detects them in this order.
CXR_LAYOUTS = ("montgomery", "shenzhen", "folder")

_MASK_DIRS = ("masks", "mask")
_NLM_NAME = re.compile(r"(?P<patient>.+_\d+)_\d")  # MCUCXR_0001_0 / CHNCXR_0001_1: patient, then 0 normal / 1 abnormal


def _patient(stem: str) -> str:
    match = _NLM_NAME.fullmatch(stem)
    return match["patient"] if match else stem


def _nlm_images(root: Path, layout: str) -> list[Path]:
    image_dir = root / "CXR_png"
    if not image_dir.is_dir():
        raise LayoutError(f"{root}: not a {layout} layout (no CXR_png/ folder)")
    images = sorted(p for p in image_dir.iterdir() if p.is_file() and split_suffix(p.name, IMAGE_SUFFIXES_2D)[1])
    if not images:
        raise LayoutError(f"{image_dir}: no images")
    return images


def montgomery_datalist(root: str | Path, skipped: list[BadPair] | None = None) -> list[dict]:
    """Montgomery County cases as ``{"image", "label": [left, right], "case", "patient"}``.

    Raises:
        LayoutError: when ``root`` has no ``CXR_png/`` folder or no images in it.
        MissingFileError: when an image has no left or right mask and ``skipped`` is ``None``
            (otherwise the image is recorded there and left out).
    """
    root = Path(root)
    datalist = []
    for image in _nlm_images(root, "Montgomery"):
        masks = [root / "ManualMask" / side / image.name for side in ("leftMask", "rightMask")]
        missing = [m for m in masks if not m.is_file()]
        if missing:
            reject_pair(image, missing[0], "no lung mask", skipped)
            continue
        datalist.append(
            {"image": str(image), "label": [str(m) for m in masks], "case": image.stem, "patient": _patient(image.stem)}
        )
    return datalist


def shenzhen_datalist(root: str | Path, skipped: list[BadPair] | None = None) -> list[dict]:
    """Shenzhen cases as ``{"image", "label", "case", "patient"}``, masks named ``<name>_mask.png``.

    Raises:
        LayoutError: when ``root`` has no ``CXR_png/`` folder, or no ``masks/`` (or ``mask/``) folder.
        MissingFileError: when an image has no mask and ``skipped`` is ``None``.
    """
    root = Path(root)
    images = _nlm_images(root, "Shenzhen")
    mask_dir = next((root / d for d in _MASK_DIRS if (root / d).is_dir()), None)
    if mask_dir is None:
        raise LayoutError(f"{root}: not a Shenzhen layout (no masks/ or mask/ folder beside CXR_png/)")
    datalist = []
    for image in images:
        mask = mask_dir / f"{image.stem}_mask.png"
        if not mask.is_file():
            reject_pair(image, mask, "no lung mask", skipped)
            continue
        datalist.append({"image": str(image), "label": str(mask), "case": image.stem, "patient": _patient(image.stem)})
    return datalist


def detect_cxr_layout(root: str | Path) -> str:
    """``"montgomery"``, ``"shenzhen"`` or ``"folder"`` (``images/`` + ``masks/``, or masks beside their images).

    Raises:
        LayoutError: when none is recognised; the message says how to give a mask-name rule.
    """
    root = Path(root)
    if (root / "CXR_png").is_dir() and (root / "ManualMask" / "leftMask").is_dir():
        return "montgomery"
    if (root / "CXR_png").is_dir() and any((root / d).is_dir() for d in _MASK_DIRS):
        return "shenzhen"
    if (root / "images").is_dir() and any((root / d).is_dir() for d in _MASK_DIRS):
        return "folder"
    if detect_sibling_masks(root):
        return "folder"
    raise LayoutError(
        f"{root}: chest X-ray layout not recognised (no CXR_png/ with ManualMask/ or masks/, no images/ with "
        "masks/, no masks named NAME@.png or NAME_mask.png beside the images); give a mask-name rule, e.g. "
        "mask_pattern='{stem}@.png' or '{stem}_mask.png'"
    )


def cxr_datalist(
    root: str | Path,
    layout: str = "auto",
    mask_pattern: str | None = None,
    image_pattern: str = "*",
    image_dir: str | None = None,
    skipped: list[BadPair] | None = None,
) -> list[dict]:
    """Any chest X-ray dataset: Montgomery, Shenzhen or a folder with a mask-name rule.

    Args:
        root: the dataset folder.
        layout: one of :data:`CXR_LAYOUTS`, or ``"auto"``: the folder layout when ``mask_pattern`` is
            given, else :func:`detect_cxr_layout`.
        mask_pattern, image_pattern, image_dir: the name rule of the folder layout (see
            :class:`~medseg.data.layout.NameRule`); detected ``images/`` + ``masks/`` folders use
            ``masks/{stem}.*``.
        skipped: when a list, images without a mask are recorded there instead of raising.
    """
    root = Path(root)
    if layout == "auto":
        layout = "folder" if mask_pattern else detect_cxr_layout(root)
    if layout == "montgomery":
        return montgomery_datalist(root, skipped)
    if layout == "shenzhen":
        return shenzhen_datalist(root, skipped)
    if layout != "folder":
        raise ValueError(f"unknown chest X-ray layout {layout!r}; choose one of {('auto', *CXR_LAYOUTS)}")
    return folder_datalist(root, mask_pattern, image_pattern, image_dir, skipped, what="chest X-ray")
