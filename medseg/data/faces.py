"""Face segmentation datasets (LFW Part Labels, HELEN) as MONAI datalists.

**LFW Part Labels** (Kae et al., CVPR 2013): ``lfw_funneled/<Person>/<Person>_<NNNN>.jpg`` (250x250
RGB) with ``parts_lfw_funneled_gt_images/<Person>_<NNNN>.ppm`` ground truth coloured (255,0,0) hair,
(0,255,0) skin, (0,0,255) background. Split lists, when present, give each entry a ``"split"``:

- the official ``parts_train.txt``, ``parts_validation.txt``, ``parts_test.txt`` (1,500/500/927
  images), one ``<Person> <number>`` a line;
- or ``train.txt``, ``validation.txt``, ``test.txt`` with ``image<TAB>label`` lines relative to the
  root (the layout of the subset in ``shared/data/lfw_parts``).

Without lists, every ``.ppm`` is paired with its photo.

**HELEN** (Le et al., ECCV 2012, with the Smith et al., CVPR 2013 face-parsing labels, the
``SmithCVPR2013_dataset_resized`` release): ``images/<id>.jpg`` with one grey label image per class,
``labels/<id>/<id>_lbl00.png ... _lbl10.png`` (see :data:`HELEN_CLASSES`); split lists
``exemplars.txt`` (train, 2,000), ``tuning.txt`` (validation, 230) and ``testing.txt`` (test, 100),
one ``<n> , <id>`` a line. Each entry's ``label`` lists the 11 label images; the face mask (classes
1-9, plus hair with ``include_hair``) is decoded by :class:`medseg.transforms.HelenLabelsToMaskd`.

Entries carry a ``"patient"`` key for grouped splits: the person for LFW, the photo (the id without
its face number) for HELEN.
"""

from __future__ import annotations

import re
from pathlib import Path

from medseg.transforms.masks import HELEN_CLASSES, LFW_CLASSES, LFW_COLOURS

from .layout import BadPair, LayoutError, reject_pair

__all__ = ["HELEN_CLASSES", "HELEN_SPLIT_FILES", "LFW_CLASSES", "LFW_COLOURS", "helen_datalist", "lfw_datalist"]

#: HELEN split lists and the split each one defines.
HELEN_SPLIT_FILES = {"train": "exemplars.txt", "validation": "tuning.txt", "test": "testing.txt"}

_LFW_SPLITS = ("train", "validation", "test")
_LFW_NAME = re.compile(r"(?P<person>.+)_(?P<number>\d{4})")


def _check_split(split: str | None, splits: tuple[str, ...]) -> None:
    if split is not None and split not in splits:
        raise ValueError(f"unknown split {split!r}; choose one of {splits}")


def _lfw_listed(root: Path, split: str | None) -> list[tuple[Path, Path, str]] | None:
    """(image, label, split) from the split lists, or ``None`` when there is none."""
    official = {s: root / f"parts_{s}.txt" for s in _LFW_SPLITS}
    tabbed = {s: root / f"{s}.txt" for s in _LFW_SPLITS}
    lists = {s: p for s, p in official.items() if p.is_file()} or {s: p for s, p in tabbed.items() if p.is_file()}
    if not lists:
        return None
    pairs = []
    for name, path in lists.items():
        if split is not None and name != split:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            if path in official.values():
                person, _, index = line.strip().rpartition(" ")
                if not person or not index.isdigit():
                    raise LayoutError(f"{path}:{number}: expected '<Person> <number>', got {line!r}")
                stem = f"{person}_{int(index):04d}"
                pairs.append(
                    (
                        root / "lfw_funneled" / person / f"{stem}.jpg",
                        root / "parts_lfw_funneled_gt_images" / f"{stem}.ppm",
                        name,
                    )
                )
            else:
                fields = line.split("\t")
                if len(fields) != 2:
                    raise LayoutError(f"{path}:{number}: expected 'image<TAB>label', got {line!r}")
                pairs.append((root / fields[0].strip(), root / fields[1].strip(), name))
    return pairs


def lfw_datalist(root: str | Path, split: str | None = None, skipped: list[BadPair] | None = None) -> list[dict]:
    """LFW Part Labels pairs as ``{"image", "label", "case", "patient"[, "split"]}``.

    Args:
        root: the folder holding ``lfw_funneled/`` and ``parts_lfw_funneled_gt_images/``.
        split: ``"train"``, ``"validation"`` or ``"test"`` to keep one listed split; ``None``: all.
        skipped: when a list, listed pairs with a missing file are recorded there instead of raising.

    Raises:
        LayoutError: when ``root`` has no ``parts_lfw_funneled_gt_images/`` folder, or a split list
            has a malformed line.
        MissingFileError: when a listed image or label, or the photo of a label, is missing.
    """
    _check_split(split, _LFW_SPLITS)
    root = Path(root)
    gt_dir = root / "parts_lfw_funneled_gt_images"
    if not gt_dir.is_dir():
        raise LayoutError(f"{root}: not an LFW Part Labels layout (no parts_lfw_funneled_gt_images/ folder)")
    listed = _lfw_listed(root, split)
    if listed is None:
        if split is not None:
            raise LayoutError(f"{root}: no split lists (parts_{split}.txt or {split}.txt) for split {split!r}")
        labels = sorted(gt_dir.glob("*.ppm"))
        if not labels:
            raise LayoutError(f"{gt_dir}: no .ppm ground truth")
        listed = []
        for label in labels:
            match = _LFW_NAME.fullmatch(label.stem)
            person = match["person"] if match else label.stem
            listed.append((root / "lfw_funneled" / person / f"{label.stem}.jpg", label, None))
    datalist = []
    for image, label, name in listed:
        missing = [p for p in (image, label) if not p.is_file()]
        if missing:
            reject_pair(image, label, f"no such file {missing[0]}", skipped)
            continue
        match = _LFW_NAME.fullmatch(image.stem)
        entry = {
            "image": str(image),
            "label": str(label),
            "case": image.stem,
            "patient": match["person"] if match else image.stem,
        }
        if name is not None:
            entry["split"] = name
        datalist.append(entry)
    return datalist


def helen_datalist(root: str | Path, split: str | None = None, skipped: list[BadPair] | None = None) -> list[dict]:
    """HELEN pairs as ``{"image", "label": [11 label images], "case", "patient"[, "split"]}``.

    Args:
        root: the folder holding ``images/`` and ``labels/``.
        split: ``"train"``, ``"validation"`` or ``"test"`` (:data:`HELEN_SPLIT_FILES`); ``None``: all.
        skipped: when a list, images with a missing label image are recorded there instead of raising.

    Raises:
        LayoutError: when ``root`` has no ``images/`` or ``labels/`` folder, or a list line is malformed.
        MissingFileError: when an image or one of its label images is missing.
    """
    _check_split(split, tuple(HELEN_SPLIT_FILES))
    root = Path(root)
    if not (root / "images").is_dir() or not (root / "labels").is_dir():
        raise LayoutError(f"{root}: not a HELEN layout (no images/ and labels/ folders)")
    lists = {name: root / file for name, file in HELEN_SPLIT_FILES.items() if (root / file).is_file()}
    if split is not None and split not in lists:
        raise LayoutError(f"{root}: no {HELEN_SPLIT_FILES[split]} for split {split!r}")
    ids: list[tuple[str, str | None]] = []
    if lists:
        for name, path in lists.items():
            if split is not None and name != split:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                _, comma, face = line.partition(",")
                if not comma or not face.strip():
                    raise LayoutError(f"{path}:{number}: expected '<n> , <id>', got {line!r}")
                ids.append((face.strip(), name))
    else:
        ids = [(p.stem, None) for p in sorted((root / "images").glob("*.jpg"))]
        if not ids:
            raise LayoutError(f"{root / 'images'}: no .jpg images")
    datalist = []
    for face, name in ids:
        image = root / "images" / f"{face}.jpg"
        labels = [root / "labels" / face / f"{face}_lbl{c:02d}.png" for c in range(len(HELEN_CLASSES))]
        missing = [p for p in (image, *labels) if not p.is_file()]
        if missing:
            reject_pair(image, missing[0], f"no such file {missing[0]}", skipped)
            continue
        entry = {
            "image": str(image),
            "label": [str(p) for p in labels],
            "case": face,
            "patient": face.rsplit("_", 1)[0],
        }
        if name is not None:
            entry["split"] = name
        datalist.append(entry)
    return datalist
