"""What every dataset adapter shares: layout errors, skipped pairs, file kinds and image-to-mask name rules.

An adapter turns a dataset root into a MONAI Decathlon-style datalist, a list of
``{"image": ..., "label": ..., "case": ...}`` dictionaries. When an image has no mask it either
raises :class:`MissingFileError` naming both paths, or, when the caller passes a ``skipped`` list,
records a :class:`BadPair` there and goes on (``medseg prepare`` does the latter and prints them).

:class:`NameRule` maps an image to its mask with two templates, as a user would write them:

- ``mask_pattern``, a path relative to the dataset root, e.g. ``"{stem}@.png"`` (a mask beside its
  image), ``"masks/{stem}_mask.png"``, ``"labels/{stem}.*"`` (``*`` is a wildcard that must match
  exactly one file) or ``"wholeLung-{id}.nrrd"``;
- ``image_pattern``, matched against each candidate image's name, e.g. ``"*"`` (every image) or
  ``"ct-{id}.nrrd"``, whose ``{fields}`` are available to ``mask_pattern``; a pattern without an
  extension (``"ct-{id}"``) is matched against the name without its extension.

``{stem}`` (the image name without its extension, ``.nii.gz`` counting as one) and ``{name}`` (the
full file name) are always available. Python's :mod:`string` formatting and :mod:`fnmatch` only go
one way (template to name), so the name-to-fields parsing is written here.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from medseg.dicom import is_dicom_file

__all__ = [
    "IMAGE_SUFFIXES_2D",
    "SIBLING_MASK_SUFFIXES",
    "VOLUME_SUFFIXES",
    "BadPair",
    "LayoutError",
    "MissingFileError",
    "NameRule",
    "detect_sibling_masks",
    "folder_datalist",
    "is_dicom_series",
    "match_pairs",
    "reject_pair",
    "split_suffix",
]

#: 2D image files the chest X-ray and face adapters accept (single-frame DICOM included).
IMAGE_SUFFIXES_2D = (".png", ".jpg", ".jpeg", ".bmp", ".dcm")

#: 3D volume files the CT adapters accept; a folder holding one DICOM series is accepted too.
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


class LayoutError(FileNotFoundError):
    """A dataset root whose layout the adapter does not recognise; the message names the path."""


class MissingFileError(FileNotFoundError):
    """An image without its mask, or a listed image or mask that does not exist; the message names both paths."""


@dataclass(frozen=True)
class BadPair:
    """An image/mask pair left out of a datalist, and why."""

    image: str
    label: str | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        mask = f" (mask {self.label})" if self.label else ""
        return f"{self.image}{mask}: {self.reason}"


def reject_pair(image: str | Path, label: str | Path | None, reason: str, skipped: list[BadPair] | None) -> None:
    """Raise :class:`MissingFileError` for a broken pair, or record it in ``skipped`` when a list is given."""
    if skipped is None:
        raise MissingFileError(f"{image}: {reason}" + (f" (mask {label})" if label else ""))
    skipped.append(BadPair(str(image), None if label is None else str(label), reason))


def split_suffix(name: str, suffixes: Iterable[str] = VOLUME_SUFFIXES + IMAGE_SUFFIXES_2D) -> tuple[str, str]:
    """``("ct-64", ".nrrd")`` for ``"ct-64.nrrd"``: the longest known suffix (case-insensitive) is split off."""
    lower = name.lower()
    for suffix in sorted(suffixes, key=len, reverse=True):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, ""


def is_dicom_series(folder: Path) -> bool:
    """Whether ``folder`` directly holds DICOM files (``.dcm``, or files with the ``DICM`` preamble)."""
    if not folder.is_dir():
        return False
    for child in sorted(folder.iterdir()):
        if child.is_file():
            return is_dicom_file(child)
    return False


def _template_regex(template: str, field: str) -> str:
    """Regex of a ``{field}``/``*`` template; ``field`` is the regex a ``{name}`` placeholder matches."""
    parts, seen = [], set()
    for literal, name, spec, conversion in string.Formatter().parse(template):
        parts.append(
            ".*".join(re.escape(piece) for piece in literal.split("*")) if "*" in literal else re.escape(literal)
        )
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise ValueError(f"name rule {template!r}: use plain {{field}} placeholders, got {{{name}}}")
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>{field})")
        seen.add(name)
    return "".join(parts)


@dataclass(frozen=True)
class NameRule:
    """Image-to-mask naming rule (see the module docstring for the template syntax).

    Args:
        mask_pattern: the mask's path relative to the dataset root, with ``{fields}`` and ``*``.
        image_pattern: what an image's file (or DICOM folder) name must look like; its ``{fields}``
            are passed to ``mask_pattern``. Default ``"*"``: any name.

    Example::

        rule = NameRule("wholeLung-{id}.nrrd", image_pattern="ct-{id}.nrrd")
        rule.image_fields("ct-64.nrrd")  # {"id": "64", "stem": "ct-64", "name": "ct-64.nrrd"}
    """

    mask_pattern: str
    image_pattern: str = "*"

    def __post_init__(self) -> None:
        image_fields = set(re.compile(_template_regex(self.image_pattern, ".+?")).groupindex)
        mask_fields = set(re.compile(_template_regex(self.mask_pattern, ".+?")).groupindex)
        unknown = mask_fields - image_fields - {"stem", "name"}
        if unknown:
            raise ValueError(
                f"mask pattern {self.mask_pattern!r} uses {sorted(unknown)}, which image pattern "
                f"{self.image_pattern!r} does not define (always available: stem, name)"
            )

    def image_fields(self, name: str) -> dict[str, str] | None:
        """The fields of an image called ``name`` (no folders), or ``None`` when it does not match.

        A pattern that ends with a file extension (``"ct-{id}.nrrd"``) is matched against the whole
        name, any other (``"ct-{id}"``, ``"*"``) against the stem.
        """
        stem = split_suffix(name)[0]
        target = name if split_suffix(self.image_pattern)[1] else stem
        match = re.fullmatch(_template_regex(self.image_pattern, "[^/]+?"), target)
        if match is None:
            return None
        return {**match.groupdict(), "stem": stem, "name": name}

    def is_mask(self, relative_path: str) -> bool:
        """Whether a path relative to the root looks like a mask, so that it is not taken as an image."""
        return re.fullmatch(_template_regex(self.mask_pattern, ".+"), relative_path) is not None

    def mask_path(self, root: Path, fields: dict[str, str]) -> tuple[Path | None, str]:
        """The mask for an image with ``fields``: ``(path, "")``, or ``(None, reason)`` when there is none."""
        relative = self.mask_pattern.format(**fields)
        if "*" not in relative:
            path = root / relative
            return (path, "") if path.exists() else (None, f"no mask {relative!r}")
        matches = sorted(root.glob(relative))
        if len(matches) == 1:
            return matches[0], ""
        if not matches:
            return None, f"no mask matching {relative!r}"
        return None, f"{len(matches)} masks match {relative!r}: {', '.join(m.name for m in matches[:4])}"


def match_pairs(
    root: str | Path,
    rule: NameRule,
    image_dir: str | None = None,
    suffixes: Iterable[str] = IMAGE_SUFFIXES_2D,
    dicom_series: bool = False,
    skipped: list[BadPair] | None = None,
) -> list[dict]:
    """Pair the images in ``root/image_dir`` (default ``root``) with their masks by ``rule``.

    Candidates are the files with one of ``suffixes`` and, with ``dicom_series``, the sub-folders
    holding a DICOM series; files that look like masks (:meth:`NameRule.is_mask`) and names that do
    not match the image pattern are left out. Each entry is ``{"image", "label", "case"}``, the case
    being the ``{case}`` field when the image pattern has one, else the image's stem.

    Raises:
        LayoutError: when the image folder does not exist, or no candidate matches the image pattern.
        MissingFileError: when an image has no mask and ``skipped`` is ``None``.
    """
    root = Path(root)
    folder = root / image_dir if image_dir else root
    if not folder.is_dir():
        raise LayoutError(f"{folder}: no such folder")
    suffixes = tuple(s.lower() for s in suffixes)
    datalist: list[dict] = []
    cases: dict[str, Path] = {}
    matched = 0
    for path in sorted(folder.iterdir()):
        if path.is_file():
            if split_suffix(path.name, suffixes)[1] == "":
                continue
        elif not (dicom_series and is_dicom_series(path)):
            continue
        if rule.is_mask(path.relative_to(root).as_posix()):
            continue
        fields = rule.image_fields(path.name)
        if fields is None:
            continue
        matched += 1
        mask, reason = rule.mask_path(root, fields)
        if mask is None:
            reject_pair(path, root / rule.mask_pattern.format(**fields), reason, skipped)
            continue
        case = fields.get("case", fields["stem"])
        if case in cases:
            raise LayoutError(f"{path}: case {case!r} already given by {cases[case]}; narrow the image pattern")
        cases[case] = path
        datalist.append({"image": str(path), "label": str(mask), "case": case})
    if not matched:
        kinds = ", ".join(suffixes) + (" or a DICOM series folder" if dicom_series else "")
        raise LayoutError(
            f"{folder}: no image ({kinds}) matches the image pattern {rule.image_pattern!r} and is not a mask"
        )
    return datalist


#: Mask names beside their images that :func:`detect_sibling_masks` recognises (OpenIST's ``@``, the ``-msk`` of
#: the imlab lung CT demo, and common ones).
SIBLING_MASK_SUFFIXES = ("@", "_mask", "-mask", "_seg", "-msk", "_msk")


def detect_sibling_masks(
    root: str | Path, image_suffixes: Iterable[str] = IMAGE_SUFFIXES_2D, mask_suffixes: Iterable[str] = (".png",)
) -> str | None:
    """The mask-name rule of masks stored beside their images (``NAME.jpg`` + ``NAME@.png``, ``NAME.nii.gz`` +
    ``NAME-msk.nii.gz``), or ``None``: the first suffix of :data:`SIBLING_MASK_SUFFIXES` for which some image of
    ``root`` (a file with one of ``image_suffixes``) has a mask with one of ``mask_suffixes``."""
    root = Path(root)
    names = {p.name for p in root.iterdir() if p.is_file()} if root.is_dir() else set()
    stems = {split_suffix(name, image_suffixes)[0] for name in names if split_suffix(name, image_suffixes)[1]}
    for suffix in SIBLING_MASK_SUFFIXES:
        for extension in mask_suffixes:
            if any(f"{stem}{suffix}{extension}" in names for stem in stems):
                return f"{{stem}}{suffix}{extension}"
    return None


_MASK_DIRS = ("masks", "mask")


def folder_datalist(
    root: str | Path,
    mask_pattern: str | None,
    image_pattern: str = "*",
    image_dir: str | None = None,
    skipped: list[BadPair] | None = None,
    what: str = "image",
) -> list[dict]:
    """A folder of 2D images (PNG, JPEG, BMP or single-frame DICOM) paired with their masks by a name rule
    (:class:`NameRule`), as ``{"image", "label", "case"}``: the layout every 2D adapter accepts besides the
    published ones (chest X-rays, skin lesions).

    Without ``mask_pattern``, the rule is detected: masks beside their images (:func:`detect_sibling_masks`), or
    an ``images/`` folder with a ``masks/`` (or ``mask/``) one (``masks/{stem}.*``).

    Raises:
        LayoutError: when no rule is given and none is detected, or no image matches ``image_pattern``; ``what``
            names the kind of dataset in the message.
        MissingFileError: when an image has no mask and ``skipped`` is ``None``.
    """
    root = Path(root)
    if mask_pattern is None and image_dir is None:
        mask_pattern = detect_sibling_masks(root)
    if mask_pattern is None:
        mask_dir = next((d for d in _MASK_DIRS if (root / d).is_dir()), None)
        if mask_dir is None or not (root / (image_dir or "images")).is_dir():
            raise LayoutError(
                f"{root}: no {what} images/ and masks/ folders, no masks beside the images; give a mask-name rule, "
                "e.g. mask_pattern='{stem}_mask.png'"
            )
        mask_pattern, image_dir = f"{mask_dir}/{{stem}}.*", image_dir or "images"
    return match_pairs(root, NameRule(mask_pattern, image_pattern), image_dir, IMAGE_SUFFIXES_2D, skipped=skipped)
