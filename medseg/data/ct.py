"""Any folder of CT volumes with masks, as a MONAI datalist.

Images are volume files (``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``, ``.mhd``) or sub-folders holding
one DICOM series each; masks are found by a :class:`~medseg.data.layout.NameRule`. Examples:

- ``images/<case>/IMG0001.dcm ...`` with ``labels/<case>.nii.gz``: detected, rule ``labels/{stem}.*``;
- the Chest Imaging Platform test data (``ct-64.nrrd``, its DICOM series ``ct-64Dicom/`` and the
  mask ``wholeLung-64.nrrd`` in one folder): ``image_pattern="ct-{id}.nrrd"`` (or ``"ct-{id}Dicom"``
  for the series) with ``mask_pattern="wholeLung-{id}.nrrd"``;
- nnU-Net's ``imagesTr/<case>_0000.nii.gz`` with ``labelsTr/<case>.nii.gz``: ``image_dir="imagesTr"``,
  ``image_pattern="{case}_0000.nii.gz"``, ``mask_pattern="labelsTr/{case}.nii.gz"``.
"""

from __future__ import annotations

from pathlib import Path

from .layout import VOLUME_SUFFIXES, BadPair, LayoutError, NameRule, match_pairs

__all__ = ["ct_datalist"]

_LABEL_DIRS = ("labels", "masks")


def ct_datalist(
    root: str | Path,
    mask_pattern: str | None = None,
    image_pattern: str = "*",
    image_dir: str | None = None,
    skipped: list[BadPair] | None = None,
) -> list[dict]:
    """CT volumes or DICOM series under ``root/image_dir`` with their masks, as ``{"image", "label", "case"}``.

    Args:
        root: the dataset folder.
        mask_pattern: the mask's path relative to ``root`` (see :class:`~medseg.data.layout.NameRule`).
            ``None`` detects ``images/`` with ``labels/`` (or ``masks/``) and uses ``labels/{stem}.*``.
        image_pattern: what an image's name must look like, with ``{fields}`` for ``mask_pattern``.
        image_dir: the folder of the images, relative to ``root`` (default ``root``, or ``images``
            when detected).
        skipped: when a list, images without a mask are recorded there instead of raising.

    Raises:
        LayoutError: when no rule is given and no ``images/`` + ``labels/`` folders exist, or no
            volume matches ``image_pattern``.
        MissingFileError: when an image has no mask and ``skipped`` is ``None``.
    """
    root = Path(root)
    if mask_pattern is None:
        label_dir = next((d for d in _LABEL_DIRS if (root / d).is_dir()), None)
        if label_dir is None or not (root / (image_dir or "images")).is_dir():
            raise LayoutError(
                f"{root}: no images/ and labels/ folders; give a mask-name rule, e.g. "
                "image_pattern='ct-{id}.nrrd', mask_pattern='wholeLung-{id}.nrrd'"
            )
        mask_pattern, image_dir = f"{label_dir}/{{stem}}.*", image_dir or "images"
    rule = NameRule(mask_pattern, image_pattern)
    return match_pairs(root, rule, image_dir, VOLUME_SUFFIXES, dicom_series=True, skipped=skipped)
