"""Any folder of CT volumes with masks, as a MONAI datalist.

Images are volume files (``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``, ``.mhd``) or sub-folders holding
one DICOM series each; masks are found by a :class:`~medseg.data.layout.NameRule`. Examples:

- ``images/<case>/IMG0001.dcm ...`` with ``labels/<case>.nii.gz``: detected, rule ``labels/{stem}.*``;
- the Chest Imaging Platform test data (``ct-64.nrrd``, its DICOM series ``ct-64Dicom/`` and the
  mask ``wholeLung-64.nrrd`` in one folder): detected, ``image_pattern="ct-{id}.nrrd"`` (or ``"ct-{id}Dicom"``
  for the series) with ``mask_pattern="wholeLung-{id}.nrrd"``;
- masks beside their volumes, ``NAME.nii.gz`` with ``NAME-msk.nii.gz`` (the imlab lung CT demo), ``NAME_mask``,
  ``NAME_seg``, ...: detected (:func:`medseg.data.layout.detect_sibling_masks`);
- nnU-Net's ``imagesTr/<case>_0000.nii.gz`` with ``labelsTr/<case>.nii.gz``: ``image_dir="imagesTr"``,
  ``image_pattern="{case}_0000.nii.gz"``, ``mask_pattern="labelsTr/{case}.nii.gz"``.
"""

from __future__ import annotations

from pathlib import Path

from .layout import VOLUME_SUFFIXES, BadPair, LayoutError, NameRule, detect_sibling_masks, match_pairs

__all__ = ["ct_datalist"]

_LABEL_DIRS = ("labels", "masks")
#: The Chest Imaging Platform's test volumes and their whole-lung masks.
_CIP_RULE = ("wholeLung-{id}.nrrd", "ct-{id}.nrrd")


def _detected_rule(root: Path, image_pattern: str, image_dir: str | None) -> tuple[str, str, str | None]:
    """The name rule of a CT folder given without one: ``images/`` with ``labels/`` (or ``masks/``), the Chest
    Imaging Platform's ``ct-N.nrrd`` with ``wholeLung-N.nrrd``, or masks beside their volumes."""
    label_dir = next((d for d in _LABEL_DIRS if (root / d).is_dir()), None)
    if label_dir is not None and (root / (image_dir or "images")).is_dir():
        return f"{label_dir}/{{stem}}.*", image_pattern, image_dir or "images"
    if image_dir is None and any(root.glob("ct-*.nrrd")) and any(root.glob("wholeLung-*.nrrd")):
        return (*_CIP_RULE, None)
    sibling = detect_sibling_masks(root / (image_dir or ""), VOLUME_SUFFIXES, VOLUME_SUFFIXES)
    if sibling is not None:
        return sibling, image_pattern, image_dir
    raise LayoutError(
        f"{root}: no images/ and labels/ folders, no masks beside the volumes (NAME-msk.nii.gz, NAME_mask.nii.gz); "
        "give a mask-name rule, e.g. image_pattern='ct-{id}.nrrd', mask_pattern='wholeLung-{id}.nrrd'"
    )


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
            ``None`` detects the rule (see the module docstring).
        image_pattern: what an image's name must look like, with ``{fields}`` for ``mask_pattern``.
        image_dir: the folder of the images, relative to ``root`` (default ``root``, or ``images``
            when detected).
        skipped: when a list, images without a mask are recorded there instead of raising.

    Raises:
        LayoutError: when no rule is given and none is detected, or no volume matches ``image_pattern``.
        MissingFileError: when an image has no mask and ``skipped`` is ``None``.
    """
    root = Path(root)
    if mask_pattern is None:
        mask_pattern, image_pattern, image_dir = _detected_rule(root, image_pattern, image_dir)
    rule = NameRule(mask_pattern, image_pattern)
    return match_pairs(root, rule, image_dir, VOLUME_SUFFIXES, dicom_series=True, skipped=skipped)
