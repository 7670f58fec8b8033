"""A shipped model's manifest: what the model is, what it was trained on and how well it does, and the SHA-256 and
size of every file of its folder, checked before the model is used.

``manifest.json`` sits at the root of a shipped model's folder (``medseg/pretrained/<name>/``, :mod:`.registry`) and
is written by ``scripts/ship_model.py`` (:func:`medseg.apps.shipping.ship_model`). :func:`verify_files` refuses a
folder in which a file listed is missing, has another size or digest, or a file is not listed: one line naming the
file. The digests detect damaged, truncated, replaced and stray files (a partial copy, an edited weight file); they
are not a signature: whoever can rewrite the weights can rewrite the manifest too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from medseg.files import content_digest, read_json, write_json

__all__ = [
    "MANIFEST_FILE",
    "Manifest",
    "ManifestError",
    "file_records",
    "read_manifest",
    "verify_files",
    "write_manifest",
]

#: The manifest's name, at the root of a shipped model's folder.
MANIFEST_FILE = "manifest.json"
#: The manifest's format; a manifest of another is refused.
FORMAT_VERSION = 1


class ManifestError(ValueError):
    """A shipped model whose files are not the ones its manifest lists, or an unreadable manifest; one line naming
    the file and the problem."""


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` records of a shipped model.

    Args:
        name: the model's name (its folder's), as ``medseg infer --model`` takes it.
        task: the task record it segments (:mod:`medseg.tasks`).
        labels: what it segments (:attr:`medseg.pipeline.ModelSettings.labels`).
        input: the input it expects, in one line.
        training_data: one entry per data source it was trained on: ``name``, ``cases``, ``licence`` (terms of
            use), and any more (``source``: where it comes from).
        results: measured results per data source, free-form (a metric's mean, SD, cases, ...).
        training_command: the command that trained it.
        commit: the medseg commit it was trained (or shipped) at.
        datalist_sha256: SHA-256 of the data list it was trained, selected and evaluated on.
        files: every file of the folder but the manifest, by its path relative to the folder (``/``-separated):
            ``{"sha256": ..., "size": bytes}``.
        weights_precision: ``float16`` or ``float32``, how ``models/model.pt`` stores the weights (computed in
            ``float32`` either way).
        runtimes: the runtimes it ships files for (:data:`medseg.inference.RUNTIMES`).
        checks: what shipping measured: the golden masks' least Dice of the half-precision weights and of the
            quantized network against full precision.
        format_version: :data:`FORMAT_VERSION`.
    """

    name: str
    task: str
    labels: list[str]
    input: str
    training_data: list[dict[str, Any]]
    results: dict[str, Any]
    training_command: str
    commit: str
    datalist_sha256: str
    files: dict[str, dict[str, Any]]
    weights_precision: str = "float32"
    runtimes: list[str] = field(default_factory=lambda: ["pytorch"])
    checks: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any], path: str | Path) -> Manifest:
        """The manifest of a JSON record read from ``path``.

        Raises:
            ManifestError: naming ``path``, for a record of another format, missing or unknown fields, or a file
                path outside the model's folder.
        """
        if not isinstance(record, dict):
            raise ManifestError(f"{path}: not a manifest (a JSON object is expected)")
        if record.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ManifestError(
                f"{path}: manifest format {record.get('format_version')!r}, this medseg reads {FORMAT_VERSION}"
            )
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(record) - known)
        try:
            manifest = cls(**{key: value for key, value in record.items() if key in known})
        except TypeError as error:
            raise ManifestError(f"{path}: not a complete manifest ({error})") from None
        if unknown:
            raise ManifestError(f"{path}: unknown manifest field(s) {', '.join(unknown)}")
        for relative, entry in manifest.files.items():
            pure = PurePosixPath(relative)
            if pure.is_absolute() or ".." in pure.parts or relative == MANIFEST_FILE:
                raise ManifestError(f"{path}: lists {relative!r}, not a file of the model's folder")
            if not isinstance(entry, dict) or not {"sha256", "size"} <= set(entry):
                raise ManifestError(f"{path}: its entry of {relative} lacks the SHA-256 or the size")
        return manifest


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` but the manifest, by relative ``/``-separated path, sorted."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.relative_to(folder).as_posix() != MANIFEST_FILE
    )


def file_records(folder: str | Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size"}}`` of every file under ``folder`` but the manifest
    (:attr:`Manifest.files`)."""
    folder = Path(folder)
    return {
        relative: {"sha256": content_digest(folder / relative), "size": (folder / relative).stat().st_size}
        for relative in _files(folder)
    }


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of the shipped model in ``folder``.

    Raises:
        ManifestError: for a folder without one, or one that cannot be read (named).
    """
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{path}: missing: not a shipped model's folder (scripts/ship_model.py writes it)")
    record = read_json(path, "a manifest", ManifestError)
    return Manifest.from_dict(record, path)


def write_manifest(folder: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest`` as ``folder/manifest.json`` (atomically); return its path."""
    return write_json(Path(folder) / MANIFEST_FILE, manifest.to_dict())


def verify_files(folder: str | Path, manifest: Manifest) -> None:
    """Check that ``folder`` holds exactly the files ``manifest`` lists, each of its size and SHA-256.

    Raises:
        ManifestError: for the first file missing, of another size or digest, or not listed; one line naming it.
    """
    folder = Path(folder)
    for relative, entry in sorted(manifest.files.items()):
        path = folder / relative
        if not path.is_file():
            raise ManifestError(f"{path}: missing (its manifest lists it): the model's folder is incomplete")
        size = path.stat().st_size
        if size != entry["size"]:
            raise ManifestError(
                f"{path}: {size} bytes where its manifest records {entry['size']} (tampered, damaged or cut short?)"
            )
        if content_digest(path) != entry["sha256"]:
            raise ManifestError(f"{path}: SHA-256 differs from the one its manifest records (tampered or damaged?)")
    stray = [relative for relative in _files(folder) if relative not in manifest.files]
    if stray:
        raise ManifestError(f"{folder / stray[0]}: not listed in the model's manifest (added after shipping?)")
