"""What made a case's outputs, so that a rerun reuses them only when it would make the same ones.

A case's outputs are a function of three things: the input's content, the model (its settings fingerprint, the
SHA-256 of its weights file and what runs it) and the settings that change the result (threshold, mask cleaning,
test-time flips and shifts). :class:`Provenance` holds the three; :class:`CaseLedger` keeps, for each case of an
output folder, its provenance, the SHA-256 of each output file medseg wrote and the case's record
(``<output>/.medseg/<case>.json``, written atomically).

On a rerun (:func:`plan_case`) an output is reused only when the ledger proves it: the file's digest is the one
medseg recorded (the file is medseg's and unchanged) and the provenance is the same as this run's. Otherwise the
case is redone with ``overwrite``, or refused with one line saying what differs, naming the file; a file medseg did
not write (no ledger, or another digest) is never deleted or replaced without ``overwrite``.

The ledger marks an output as being written before the file is written, and records its digest after: a run killed
in between leaves a complete file (every output is written atomically) that the ledger's pending entry vouches for.
Before a case is redone, its earlier outputs are removed, so that a pending entry never vouches for an older file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medseg.files import content_digest, file_suffix, write_json

from .cases import Case

__all__ = ["LEDGER_FOLDER", "CaseLedger", "CasePlan", "Provenance", "input_digest", "plan_case"]

#: The hidden folder of an output folder where the ledger of each case lives.
LEDGER_FOLDER = ".medseg"
#: Volume formats whose header names a second file holding the voxels.
_DETACHED_HEADERS = {".mhd": "ElementDataFile", ".hdr": None}


def _data_files(path: Path) -> list[Path]:
    """The files an image's content is in: the file, and for a detached header (MetaImage ``.mhd``, Analyze/NIfTI
    pair ``.hdr``) its data file."""
    suffix = file_suffix(path).lower()
    if suffix not in _DETACHED_HEADERS or not path.is_file():
        return [path]
    if suffix == ".hdr":
        return [path, path.with_suffix(".img")]
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == _DETACHED_HEADERS[suffix] and value.strip() and value.strip() != "LOCAL":
            return [path, path.parent / value.strip()]
    return [path]


def input_digest(case: Case) -> str:
    """SHA-256 over the bytes of every file the case's image is read from (a series' slices in order)."""
    return content_digest([file for path in case.files or [case.path] for file in _data_files(path)])


@dataclass(frozen=True)
class Provenance:
    """What an output was made from.

    Args:
        input_sha256: :func:`input_digest` of the case.
        model: the model's identity: ``fingerprint`` (its settings, :meth:`ModelSettings.fingerprint`),
            ``weights_sha256`` (the file run) and ``runtime``.
        settings: how it was applied: threshold, cleaning, test-time flips and shifts, device, mixed precision.
    """

    input_sha256: str
    model: dict[str, Any]
    settings: dict[str, Any]

    def differences(self, other: Provenance, input_path: str | None = None) -> str:
        """In words, how ``other`` (what made the outputs on disk) differs from this; empty when it does not.
        ``input_path``: the input ``other`` was made from, named when the contents differ."""
        said = []
        if other.input_sha256 != self.input_sha256:
            source = f" ({input_path})" if input_path else ""
            said.append(f"from another input{source} than this one's content")
        if changed := _changed(other.model, self.model, digits=12):
            said.append(f"by another model ({changed})")
        if changed := _changed(other.settings, self.settings):
            said.append(f"with other settings ({changed})")
        return "; ".join(said)


def _changed(before: dict[str, Any], now: dict[str, Any], digits: int | None = None) -> str:
    """``name before -> now`` for each entry that differs (values cut to ``digits`` characters: digests)."""

    def shown(value: Any) -> str:
        return str(value)[:digits] if digits else json.dumps(value)

    names = sorted(name for name in set(before) | set(now) if before.get(name) != now.get(name))
    return ", ".join(f"{name} {shown(before.get(name))} -> {shown(now.get(name))}" for name in names)


@dataclass
class CaseLedger:
    """The ledger of one case in an output folder (see the module docstring)."""

    path: Path
    provenance: Provenance | None = None
    input: str | None = None
    #: ``{kind: {"file": name, "sha256": digest or None while it is being written}}``
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the case's record as the run that finished it gave it
    record: dict[str, Any] | None = None

    @classmethod
    def of(cls, output_dir: Path, case_name: str) -> CaseLedger:
        """The ledger of ``case_name`` in ``output_dir`` (empty when there is none, or it cannot be read)."""
        path = output_dir / LEDGER_FOLDER / f"{case_name}.json"
        try:
            saved = json.loads(path.read_text())
            provenance = Provenance(**saved["provenance"])
            return cls(path, provenance, saved.get("input"), dict(saved["outputs"]), saved.get("record"))
        except (OSError, ValueError, KeyError, TypeError):
            return cls(path)

    def save(self) -> None:
        payload = {
            "provenance": asdict(self.provenance) if self.provenance else None,
            "input": self.input,
            "outputs": self.outputs,
            "record": self.record,
        }
        write_json(self.path, payload)

    def vouches_for(self, path: Path) -> bool:
        """Whether ``path`` (an existing file) is an output medseg wrote for this ledger's provenance, unchanged."""
        entry = next((e for e in self.outputs.values() if e["file"] == path.name), None)
        if entry is None or self.provenance is None:
            return False
        if entry["sha256"] is None:  # written, then the run was killed before it recorded the digest
            return True
        return content_digest(path) == entry["sha256"]

    def begin(self, provenance: Provenance, input_path: str) -> None:
        """Start a new set of outputs for ``provenance`` (the earlier ones removed by the caller)."""
        self.provenance, self.input, self.outputs, self.record = provenance, input_path, {}, None
        self.save()

    def writing(self, kind: str, path: Path) -> None:
        self.outputs[kind] = {"file": path.name, "sha256": None}
        self.save()

    def written(self, kind: str, path: Path) -> None:
        self.outputs[kind] = {"file": path.name, "sha256": content_digest(path)}
        self.save()

    def finish(self, record: dict[str, Any]) -> None:
        self.record = record
        self.save()


@dataclass
class CasePlan:
    """What a run does with a case: ``reuse`` (every output kept), ``complete`` (the missing ones made),
    ``redo`` (all made again, the earlier ones, ``stale``, removed first) or ``refuse`` (``reason`` says why, naming
    the file); ``targets``: the outputs to write."""

    action: str
    targets: dict[str, Path]
    reason: str = ""
    stale: list[Path] = field(default_factory=list)


def plan_case(
    ledger: CaseLedger, provenance: Provenance, targets: dict[str, Path], overwrite: bool, input_path: str
) -> CasePlan:
    """What to do with a case whose outputs would be ``targets`` (see :class:`CasePlan`)."""
    output_dir = next(iter(targets.values())).parent
    recorded = [output_dir / entry["file"] for entry in ledger.outputs.values()]
    ours = [path for path in recorded if path.is_file() and ledger.vouches_for(path)]
    if overwrite:
        existing = [path for path in targets.values() if path.exists()]
        return CasePlan("redo", targets, stale=sorted(set(existing) | set(ours)))
    foreign = [path for path in targets.values() if path.exists() and path not in ours]
    if foreign:
        changed = " (or was changed since medseg wrote it)" if ledger.provenance else ""
        return CasePlan(
            "refuse",
            targets,
            f"{foreign[0]}: exists and was not written by medseg for this case{changed}; medseg does not replace it: "
            "move it away, give another --output, or pass --overwrite",
        )
    if not ours:
        return CasePlan("redo", targets)
    differences = provenance.differences(ledger.provenance, ledger.input) if ledger.provenance else ""
    if differences:
        return CasePlan(
            "refuse",
            targets,
            f"{ours[0]}: made {differences}; --overwrite replaces this case's outputs, or give another --output",
        )
    missing = {kind: path for kind, path in targets.items() if not path.exists()}
    if not missing and ledger.record is not None:
        return CasePlan("reuse", {})
    return CasePlan("complete", missing)
