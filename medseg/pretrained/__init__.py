"""Models shipped with medseg: trained, checked and documented, usable offline with ``medseg infer --model NAME``.

Each model is a folder of this package, ``medseg/pretrained/<name>/``, written by ``scripts/ship_model.py`` from a
trained model's folder: the weights (``models/model.pt``, in half precision where the golden masks do not change)
and their record (``models/settings.json``), the ONNX export (``models/model.onnx``) and, where it keeps the golden
masks, an 8-bit quantized copy (``models/model.int8.onnx``), golden cases (``golden/``), the model card
(``docs/model_card.md``) and ``manifest.json``: what it is, what it was trained on under which terms, how well it
does, and the SHA-256 of every file, checked before use.

- :mod:`medseg.pretrained.manifest`: :class:`Manifest`, :func:`verify_files`: the record and the digests.
- :mod:`medseg.pretrained.registry`: :func:`list_models`, :func:`get_model`: the shipped models by name.

``medseg models`` lists them; ``medseg infer --model NAME [--verify]`` runs one (docs/models.md).
"""

from .manifest import MANIFEST_FILE, Manifest, ManifestError, file_records, read_manifest, verify_files, write_manifest
from .registry import (
    PRETRAINED_ENV,
    PretrainedModel,
    UnknownModelError,
    check_name,
    get_model,
    list_models,
    package_root,
    pretrained_root,
)

__all__ = [
    "MANIFEST_FILE",
    "PRETRAINED_ENV",
    "Manifest",
    "ManifestError",
    "PretrainedModel",
    "UnknownModelError",
    "check_name",
    "file_records",
    "get_model",
    "list_models",
    "package_root",
    "pretrained_root",
    "read_manifest",
    "verify_files",
    "write_manifest",
]
