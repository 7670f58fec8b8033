"""Chest X-ray datasets as MONAI datalists.

Montgomery County (``CXR_png/`` with ``ManualMask/leftMask/`` and ``ManualMask/rightMask/``): each
entry's ``label`` lists both lung masks, which :class:`medseg.transforms.MergeMasksd` merges into
one binary lung mask after loading.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["montgomery_datalist"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def montgomery_datalist(root: str | Path) -> list[dict]:
    """List the Montgomery County cases under ``root`` as ``{"image", "label": [left, right], "case"}``.

    Raises:
        FileNotFoundError: when ``root`` has no ``CXR_png`` folder, or an image has no left or right mask.
    """
    root = Path(root)
    image_dir = root / "CXR_png"
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{root}: not a Montgomery layout (no CXR_png/ folder)")
    datalist = []
    for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        masks = [root / "ManualMask" / side / image.name for side in ("leftMask", "rightMask")]
        missing = [str(m) for m in masks if not m.is_file()]
        if missing:
            raise FileNotFoundError(f"{image}: no lung mask at {', '.join(missing)}")
        datalist.append({"image": str(image), "label": [str(m) for m in masks], "case": image.stem})
    if not datalist:
        raise FileNotFoundError(f"{image_dir}: no images")
    return datalist
