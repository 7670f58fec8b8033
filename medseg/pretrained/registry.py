"""The shipped models: one folder per model in this package (``medseg/pretrained/<name>/``), found by name.

Each folder holds what a trained model's folder holds for ``medseg infer --model-dir`` (``models/model.pt`` and
``settings.json``, ``models/model.onnx``, perhaps ``models/model.int8.onnx``; ``golden/``; ``docs/model_card.md``)
and its ``manifest.json`` (:mod:`.manifest`). :func:`list_models` lists them, :func:`get_model` finds one by name and
:meth:`PretrainedModel.verify` checks its files against its manifest before it is used.

``$MEDSEG_PRETRAINED`` names another folder of shipped models in place of the package's (a model checked before it
is shipped, tests); ``root`` arguments do the same per call.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .manifest import MANIFEST_FILE, Manifest, ManifestError, read_manifest, verify_files

__all__ = [
    "PRETRAINED_ENV",
    "PretrainedModel",
    "UnknownModelError",
    "check_name",
    "get_model",
    "list_models",
    "package_root",
    "pretrained_root",
]

#: The environment variable naming a folder of shipped models in place of the package's.
PRETRAINED_ENV = "MEDSEG_PRETRAINED"
#: What a shipped model's name may be: lower-case letters, digits and dashes (``cxr-lungs``).
NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


class UnknownModelError(LookupError):
    """A model name that is not shipped; the message lists the names that are."""


def package_root() -> Path:
    """The package's own folder of shipped models (``medseg/pretrained``)."""
    return Path(__file__).resolve().parent


def pretrained_root() -> Path:
    """Where the shipped models are looked for: ``$MEDSEG_PRETRAINED`` when set, else :func:`package_root`."""
    env = os.environ.get(PRETRAINED_ENV)
    return Path(env).resolve() if env else package_root()


def check_name(name: str) -> str:
    """``name`` if it can name a shipped model (:data:`NAME`); else a ``ValueError`` saying what can."""
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r} cannot name a shipped model: lower-case letters, digits and dashes (cxr-lungs)")
    return name


@dataclass(frozen=True)
class PretrainedModel:
    """A shipped model: its name, folder and manifest."""

    name: str
    folder: Path
    manifest: Manifest

    @property
    def size(self) -> int:
        """Bytes on disk: its files and its manifest."""
        listed = sum(entry["size"] for entry in self.manifest.files.values())
        return listed + (self.folder / MANIFEST_FILE).stat().st_size

    def verify(self) -> PretrainedModel:
        """Check its files against its manifest (:func:`.manifest.verify_files`); return itself.

        Raises:
            ManifestError: for a missing, altered or unlisted file; one line naming it.
        """
        verify_files(self.folder, self.manifest)
        return self


def _names(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir() if path.is_dir() and (path / MANIFEST_FILE).is_file())


def _load(root: Path, name: str) -> PretrainedModel:
    folder = root / name
    manifest = read_manifest(folder)
    if manifest.name != name:
        raise ManifestError(f"{folder / MANIFEST_FILE}: names the model {manifest.name!r}, its folder {name!r}")
    return PretrainedModel(name, folder, manifest)


def list_models(root: str | Path | None = None) -> list[PretrainedModel]:
    """The shipped models in ``root`` (default :func:`pretrained_root`), by name; their files are not checked here.

    Raises:
        ManifestError: for a model folder whose manifest cannot be read.
    """
    root = Path(root) if root is not None else pretrained_root()
    return [_load(root, name) for name in _names(root)]


def get_model(name: str, root: str | Path | None = None) -> PretrainedModel:
    """The shipped model ``name`` in ``root`` (default :func:`pretrained_root`); :meth:`PretrainedModel.verify`
    checks its files.

    Raises:
        UnknownModelError: for a name not shipped, listing those that are.
        ManifestError: for a model folder whose manifest cannot be read.
    """
    root = Path(root) if root is not None else pretrained_root()
    names = _names(root)
    if name not in names:
        shipped = ", ".join(names) if names else f"none (no model folder with a {MANIFEST_FILE} in {root})"
        raise UnknownModelError(f"no shipped model {name!r}; shipped: {shipped}")
    return _load(root, name)
