"""LUNA16 CT scans and their lung masks as a MONAI datalist.

Layout of the LUNA16 challenge download: ``subset0/ ... subset9/<seriesuid>.mhd`` (+ ``.raw``) scans
and ``seg-lungs-LUNA16/<seriesuid>.mhd`` (+ ``.zraw``) lung masks on the same grid, with label values
3 (left lung), 4 (right lung) and 5 (trachea). The mask rule (by default the lungs are foreground,
the trachea background, as in SegCaps) is applied by :func:`medseg.transforms.luna16_transforms`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from medseg.transforms.masks import LUNA16_LABELS

from .layout import BadPair, LayoutError, MissingFileError

__all__ = ["LUNA16_LABELS", "LUNA16_MASK_DIR", "luna16_datalist"]

#: Folder of the lung masks in the LUNA16 download.
LUNA16_MASK_DIR = "seg-lungs-LUNA16"


def luna16_datalist(
    root: str | Path, mask_dir: str = LUNA16_MASK_DIR, skipped: list[BadPair] | None = None
) -> list[dict]:
    """LUNA16 scans with a lung mask, as ``{"image", "label", "case": seriesuid, "patient", "subset"}``.

    Scans without a mask are reported and skipped: recorded in ``skipped`` when
    it is a list, otherwise named in one ``UserWarning``. The scan (series UID) is also the
    ``patient`` key the splits group by: LUNA16 gives no patient identifier.

    Raises:
        LayoutError: when ``root`` has no ``subset*/*.mhd`` scan or no ``mask_dir`` folder.
        MissingFileError: when no scan has a mask.
    """
    root = Path(root)
    scans = sorted(root.glob("subset*/*.mhd"))
    if not scans:
        raise LayoutError(f"{root}: not a LUNA16 layout (no subset*/<seriesuid>.mhd scans)")
    masks = root / mask_dir
    if not masks.is_dir():
        raise LayoutError(f"{root}: no {mask_dir}/ folder with the LUNA16 lung masks")
    missing: list[BadPair] = [] if skipped is None else skipped
    n_missing = len(missing)
    datalist = []
    for scan in scans:
        mask = masks / scan.name
        if not mask.is_file():
            missing.append(BadPair(str(scan), str(mask), "no lung mask"))
            continue
        datalist.append(
            {
                "image": str(scan),
                "label": str(mask),
                "case": scan.stem,
                "patient": scan.stem,
                "subset": scan.parent.name,
            }
        )
    if not datalist:
        raise MissingFileError(f"{masks}: no lung mask for any of the {len(scans)} scans under {root}")
    if skipped is None and len(missing) > n_missing:
        names = ", ".join(Path(bad.image).name for bad in missing[n_missing:][:5])
        warnings.warn(
            f"{root}: {len(missing) - n_missing} LUNA16 scan(s) without a lung mask skipped: {names}", stacklevel=2
        )
    return datalist
