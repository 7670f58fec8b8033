"""Dermoscopic skin-lesion datasets as MONAI datalists (the kappa-loss report's melanoma task).

Layouts:

- **ISIC 2017, as resized and shared** (the challenge's Part 1 images at 256×192): ``trainx/imgxN.jpg`` with
  ``trainy/imgyN.jpg``, ``validationx/`` with ``validationy/`` (and ``testx/`` with ``testy/`` when present);
- **ISIC 2017, as the challenge published it**: ``ISIC-2017_Training_Data/ISIC_NNNNNNN.jpg`` with
  ``ISIC-2017_Training_Part1_GroundTruth/ISIC_NNNNNNN_segmentation.png`` (and the ``Validation`` and ``Test``
  folders); the superpixel files beside the images are left out;
- **PH2** (Mendonça et al. 2013): ``IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp`` with
  ``IMDnnn/IMDnnn_lesion/IMDnnn_lesion.bmp`` (24-bit or 1-bit BMP masks), in the root or under
  ``PH2 Dataset images/``;
- **any folder** of images with masks named by a rule (:func:`medseg.data.layout.folder_datalist`).

Each ISIC entry keeps the challenge's split as its ``"split"`` (``train``, ``validation``, ``test``), which the bundles
use as the dataset's official lists (:func:`medseg.data.official_subsets`); the case names carry the split's
folder, since the shared subset numbers its training and validation images alike (``trainx/imgx1``,
``validationx/imgx1``). Masks are decoded by :func:`medseg.transforms.skin_label_transforms`: every format to 8-bit
grey levels, lesion above 127.
"""

from __future__ import annotations

import re
from pathlib import Path

from .layout import BadPair, LayoutError, folder_datalist, reject_pair

__all__ = ["SKIN_LAYOUTS", "detect_skin_layout", "isic_datalist", "ph2_datalist", "skin_datalist"]

#: Layouts :func:`skin_datalist` knows; ``"auto"`` detects them in this order.
SKIN_LAYOUTS = ("isic", "ph2", "folder")

#: The shared ISIC subset's folders: split -> (images, masks).
_ISIC_SHARED = {"train": ("trainx", "trainy"), "validation": ("validationx", "validationy"), "test": ("testx", "testy")}
#: The challenge's own folder names, by split.
_ISIC_OFFICIAL = {"train": "Training", "validation": "Validation", "test": "Test"}
_ISIC_IMAGE = re.compile(r"ISIC_\d+")
_PH2_CASE = re.compile(r"IMD\d+")
_PH2_FOLDERS = (".", "PH2 Dataset images", "PH2Dataset/PH2 Dataset images")


def _isic_shared(root: Path, skipped: list[BadPair] | None) -> list[dict]:
    datalist = []
    for split, (images, masks) in _ISIC_SHARED.items():
        if not (root / images).is_dir():
            continue
        for image in sorted((root / images).glob("imgx*.jpg"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)):
            number = image.stem.removeprefix("imgx")
            mask = next((p for p in (root / masks / f"imgy{number}{s}" for s in (".jpg", ".png")) if p.is_file()), None)
            if mask is None:
                reject_pair(image, root / masks / f"imgy{number}.jpg", "no lesion mask", skipped)
                continue
            case = f"{images}/{image.stem}"
            datalist.append({"image": str(image), "label": str(mask), "case": case, "split": split})
    return datalist


def _isic_official(root: Path, skipped: list[BadPair] | None) -> list[dict]:
    datalist = []
    for split, name in _ISIC_OFFICIAL.items():
        images, masks = root / f"ISIC-2017_{name}_Data", root / f"ISIC-2017_{name}_Part1_GroundTruth"
        if not images.is_dir():
            continue
        for image in sorted(p for p in images.glob("ISIC_*.jpg") if _ISIC_IMAGE.fullmatch(p.stem)):
            mask = masks / f"{image.stem}_segmentation.png"
            if not mask.is_file():
                reject_pair(image, mask, "no lesion mask", skipped)
                continue
            datalist.append({"image": str(image), "label": str(mask), "case": image.stem, "split": split})
    return datalist


def isic_datalist(root: str | Path, skipped: list[BadPair] | None = None) -> list[dict]:
    """ISIC 2017 Part 1 images with their lesion masks, each with its ``"split"`` (see the module docstring).

    Raises:
        LayoutError: when ``root`` holds neither the shared subset's folders nor the challenge's.
        MissingFileError: when an image has no mask and ``skipped`` is ``None``.
    """
    root = Path(root)
    if not any((root / images).is_dir() for images, _ in _ISIC_SHARED.values()) and not _official_folders(root):
        raise LayoutError(f"{root}: not an ISIC 2017 layout (no trainx/ + trainy/, no ISIC-2017_*_Data/ folders)")
    return _isic_shared(root, skipped) + _isic_official(root, skipped)


def _official_folders(root: Path) -> list[Path]:
    return [
        root / f"ISIC-2017_{name}_Data"
        for name in _ISIC_OFFICIAL.values()
        if (root / f"ISIC-2017_{name}_Data").is_dir()
    ]


def _ph2_folder(root: Path) -> Path | None:
    """The folder of PH2's ``IMDnnn`` case folders: the root or one of the release's sub-folders."""
    for name in _PH2_FOLDERS:
        folder = root / name
        if folder.is_dir() and any(p.is_dir() and _PH2_CASE.fullmatch(p.name) for p in folder.iterdir()):
            return folder
    return None


def ph2_datalist(root: str | Path, skipped: list[BadPair] | None = None) -> list[dict]:
    """PH2 images (``IMDnnn_Dermoscopic_Image/IMDnnn.bmp``) with their lesion masks (``IMDnnn_lesion/``).

    Raises:
        LayoutError: when ``root`` holds no ``IMDnnn`` case folders.
        MissingFileError: when an image or its mask is missing and ``skipped`` is ``None``.
    """
    root = Path(root)
    folder = _ph2_folder(root)
    if folder is None:
        raise LayoutError(f"{root}: not a PH2 layout (no IMDnnn/ case folders)")
    datalist = []
    for case in sorted(p for p in folder.iterdir() if p.is_dir() and _PH2_CASE.fullmatch(p.name)):
        image = case / f"{case.name}_Dermoscopic_Image" / f"{case.name}.bmp"
        mask = case / f"{case.name}_lesion" / f"{case.name}_lesion.bmp"
        if not image.is_file():
            reject_pair(image, None, "no dermoscopic image", skipped)
        elif not mask.is_file():
            reject_pair(image, mask, "no lesion mask", skipped)
        else:
            datalist.append({"image": str(image), "label": str(mask), "case": case.name})
    return datalist


def detect_skin_layout(root: str | Path) -> str:
    """``"isic"``, ``"ph2"`` or ``"folder"`` (``images/`` + ``masks/``, or masks beside their images).

    Raises:
        LayoutError: when none is recognised; the message says how to give a mask-name rule.
    """
    root = Path(root)
    if (root / "trainx").is_dir() or _official_folders(root):
        return "isic"
    if _ph2_folder(root) is not None:
        return "ph2"
    try:
        folder_datalist(root, None, what="skin-lesion")
    except LayoutError:
        raise LayoutError(
            f"{root}: skin-lesion layout not recognised (no ISIC trainx/ + trainy/ or ISIC-2017_*_Data/, no PH2 "
            "IMDnnn/ folders, no images/ with masks/, no masks named NAME_mask.png beside the images); give a "
            "mask-name rule, e.g. mask_pattern='masks/{stem}_segmentation.png'"
        ) from None
    return "folder"


def skin_datalist(
    root: str | Path,
    layout: str = "auto",
    mask_pattern: str | None = None,
    image_pattern: str = "*",
    image_dir: str | None = None,
    skipped: list[BadPair] | None = None,
) -> list[dict]:
    """Any skin-lesion dataset: ISIC 2017, PH2 or a folder with a mask-name rule.

    Args:
        root: the dataset folder.
        layout: one of :data:`SKIN_LAYOUTS`, or ``"auto"``: the folder layout when ``mask_pattern`` is given, else
            :func:`detect_skin_layout`.
        mask_pattern, image_pattern, image_dir: the name rule of the folder layout
            (:func:`medseg.data.layout.folder_datalist`).
        skipped: when a list, images without a mask are recorded there instead of raising.
    """
    root = Path(root)
    if layout == "auto":
        layout = "folder" if mask_pattern else detect_skin_layout(root)
    if layout == "isic":
        return isic_datalist(root, skipped)
    if layout == "ph2":
        return ph2_datalist(root, skipped)
    if layout != "folder":
        raise ValueError(f"unknown skin-lesion layout {layout!r}; choose one of {('auto', *SKIN_LAYOUTS)}")
    return folder_datalist(root, mask_pattern, image_pattern, image_dir, skipped, what="skin-lesion")
