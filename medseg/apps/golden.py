"""Golden cases: a few inputs kept with a model, with the masks it gave them, re-run on another machine to show that
it still gives them.

:func:`make_golden` (``medseg card``, ``scripts/ship_model.py``) copies the inputs into ``DIR/golden/inputs/``,
writes the masks the model gives them into ``DIR/golden/expected/`` and records them in ``DIR/golden/golden.json``
(one entry a case: its name, input, expected mask, test Dice, and the SHA-256 of the input and of the mask).
:func:`verify_golden` (``medseg infer --model-dir DIR --verify``, ``--model NAME --verify``) segments the inputs
again, with the runtime and device asked, and fails a case whose mask's Dice against the expected one is below
:data:`VERIFY_DICE` or whose input changed.

The golden set is itself stamped: ``DIR/golden/stamp.json`` records how many cases ``golden.json`` holds and its
SHA-256, so that :func:`read_golden` refuses, with one line naming the file, a ``golden.json`` emptied or cut (which
would otherwise pass as "0 of 0" or "1 of 1"), edited, not a list, with entries that are not golden cases, that
point outside the golden folder, share files or point to another case's files, and expected masks replaced.
Like the manifests of shipped models these digests detect damage and careless edits; they are not a signature.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

import numpy as np
import SimpleITK as sitk

from medseg.files import content_digest, read_json, write_json
from medseg.inference import MODEL_FILE, InferenceOptions, Predictor, find_cases, model_settings, run_inference
from medseg.inference.provenance import LEDGER_FOLDER
from medseg.pipeline import mask_postprocessing

__all__ = [
    "GOLDEN_FILE",
    "GOLDEN_STAMP_FILE",
    "VERIFY_DICE",
    "GoldenCase",
    "GoldenError",
    "make_golden",
    "mask_dice",
    "read_golden",
    "read_mask",
    "verify_golden",
]

#: The golden cases' record, in the model's folder.
GOLDEN_FILE = "golden/golden.json"
#: The golden set's stamp (:func:`read_golden`): its number of cases and the SHA-256 of :data:`GOLDEN_FILE`.
GOLDEN_STAMP_FILE = "golden/stamp.json"
#: The least Dice between a golden case's mask on this machine and its expected mask for ``--verify`` to pass.
VERIFY_DICE = 0.99


class GoldenError(ValueError):
    """Golden cases that cannot be made or cannot be trusted; one line naming the file and the problem."""


@dataclass(frozen=True)
class GoldenCase:
    """A golden case: its input (copied into the model's folder), the mask expected of it, its test Dice when it was
    one of the evaluation's test cases (``None`` for an input given that was not), and the SHA-256 of the input and
    of the expected mask. Paths are relative to the model's folder, ``/``-separated."""

    name: str
    input: str
    expected: str
    test_dice: float | None
    input_sha256: str
    expected_sha256: str


def _segment(predictor: Predictor, inputs: Sequence[Path], out: Path) -> dict[str, dict]:
    """``medseg infer``'s masks of ``inputs`` into ``out``, as the model records them; records by input path."""
    options = InferenceOptions(postprocessing=mask_postprocessing(predictor.settings))
    summary = run_inference(predictor, find_cases([str(path) for path in inputs]), out, options, progress=False)
    return {record["input"]: record for record in summary["cases"]}


def make_golden(
    folder: str | Path, predictor: Predictor, inputs: Sequence[tuple[str | Path, float | None]]
) -> list[GoldenCase]:
    """Golden cases in ``folder/golden/``: each input (a file, or a DICOM series folder) copied into ``inputs/``,
    the mask ``predictor`` gives it in ``expected/``, ``golden.json`` and its stamp; ``inputs`` pairs each with its
    test Dice (or ``None``). An earlier ``golden/`` is replaced.

    Raises:
        GoldenError: for no input, an input missing or that cannot be segmented, or two of one file name.
    """
    folder = Path(folder)
    golden = folder / "golden"
    if not inputs:
        raise GoldenError(f"{golden}: no golden inputs given")
    names = [Path(source).name for source, _ in inputs]
    if len(set(names)) != len(names):
        raise GoldenError(f"golden inputs of one file name: {', '.join(sorted(names))}; give distinct names")
    for source, _ in inputs:
        if not Path(source).exists():
            raise GoldenError(f"{source}: no such golden input")
    if golden.exists():
        shutil.rmtree(golden)
    (golden / "inputs").mkdir(parents=True)
    copies = {}
    for source, value in inputs:
        source_path = Path(source)
        copy = golden / "inputs" / source_path.name
        (shutil.copytree if source_path.is_dir() else shutil.copy2)(source_path, copy)
        copies[str(copy)] = value
    records = _segment(predictor, [Path(path) for path in copies], golden / "expected")
    cases = []
    for path, value in copies.items():
        record = records[path]
        if record["status"] != "ok":
            raise GoldenError(f"{path}: the golden case could not be segmented: {record['error']}")
        mask = Path(record["outputs"]["mask"])
        cases.append(
            GoldenCase(
                name=record["case"],
                input=Path(path).relative_to(folder).as_posix(),
                expected=mask.relative_to(folder).as_posix(),
                test_dice=value,
                input_sha256=content_digest(Path(path)),
                expected_sha256=content_digest(mask),
            )
        )
    shutil.rmtree(golden / "expected" / LEDGER_FOLDER, ignore_errors=True)  # the run's own record, not an expectation
    (golden / "expected" / "summary.json").unlink(missing_ok=True)
    write_json(folder / GOLDEN_FILE, [asdict(case) for case in cases])
    write_json(folder / GOLDEN_STAMP_FILE, {"cases": len(cases), "golden_sha256": content_digest(folder / GOLDEN_FILE)})
    return cases


def _read_stamp(folder: Path) -> dict:
    path = folder / GOLDEN_STAMP_FILE
    if not path.is_file():
        raise GoldenError(
            f"{path}: missing: the golden set is not stamped (written by an older medseg, or the stamp removed); "
            "write the golden cases again with medseg card"
        )
    stamp = read_json(path, "the golden set's stamp", GoldenError)
    if not (isinstance(stamp, dict) and isinstance(stamp.get("cases"), int) and stamp.get("golden_sha256")):
        raise GoldenError(f"{path}: not a golden set's stamp (cases, golden_sha256)")
    return stamp


def _inside_golden(folder: Path, relative: object, where: str) -> Path:
    """``folder / relative`` for a path inside ``folder/golden/`` that exists; else a :class:`GoldenError`."""
    pure = PurePosixPath(str(relative))
    if pure.is_absolute() or ".." in pure.parts or pure.parts[:1] != ("golden",):
        raise GoldenError(f"{where}: {relative!r} is not a file of the golden folder")
    path = folder / pure
    if not path.exists():
        raise GoldenError(f"{where}: {path} is missing")
    return path


def read_golden(folder: str | Path) -> list[GoldenCase]:
    """The golden cases of a model's ``folder``, once ``golden.json`` is shown to be the one written with them.

    Raises:
        GoldenError: one line naming the file, for a missing or unreadable ``golden.json`` or stamp, a
            ``golden.json`` that is not a list of golden cases, whose count or SHA-256 differs from its stamp
            (emptied, cut, edited), with paths outside the golden folder or shared by two entries, or an expected
            mask replaced since (its SHA-256).
    """
    folder = Path(folder)
    path = folder / GOLDEN_FILE
    if not path.is_file():
        raise GoldenError(f"{path}: no golden cases (medseg card writes them)")
    record = read_json(path, "golden cases", GoldenError)
    if not isinstance(record, list):
        raise GoldenError(f"{path}: a list of golden cases is expected, it holds a JSON {type(record).__name__}")
    stamp = _read_stamp(folder)
    if len(record) != stamp["cases"]:
        raise GoldenError(
            f"{path}: {len(record)} golden case(s) where the golden set's stamp records {stamp['cases']} "
            "(emptied or cut since medseg card wrote it?)"
        )
    if content_digest(path) != stamp["golden_sha256"]:
        raise GoldenError(f"{path}: not the golden.json its stamp records (SHA-256 differs): edited since written")
    keys = {item.name for item in fields(GoldenCase)}
    cases = []
    for index, entry in enumerate(record):
        if not isinstance(entry, dict) or set(entry) != keys:
            raise GoldenError(f"{path}: entry {index} is not a golden case ({', '.join(sorted(keys))})")
        case = GoldenCase(**entry)
        _inside_golden(folder, case.input, f"{path} (case {case.name})")
        expected = _inside_golden(folder, case.expected, f"{path} (case {case.name})")
        if not expected.is_file() or content_digest(expected) != case.expected_sha256:
            raise GoldenError(f"{expected}: not the expected mask golden.json records (SHA-256 differs): replaced?")
        cases.append(case)
    for attribute in ("name", "input", "expected"):
        values = [getattr(case, attribute) for case in cases]
        shared = sorted({value for value in values if values.count(value) > 1})
        if shared:
            raise GoldenError(f"{path}: two golden cases share the {attribute} {shared[0]}")
    if not cases:
        raise GoldenError(f"{path}: no golden cases in it")
    return cases


def read_mask(path: str | Path) -> np.ndarray:
    """A mask or label map written by ``medseg infer``, as an array."""
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    """The Dice of two masks, or of two label maps the least Dice of a label (any non-zero value in either); 1 for
    two empty ones.

    Raises:
        ValueError: for arrays of different shapes.
    """
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes {'×'.join(map(str, a.shape))} and {'×'.join(map(str, b.shape))}")
    labels = np.union1d(np.unique(a[a != 0]), np.unique(b[b != 0]))
    if labels.size == 0:
        return 1.0
    scores = []
    for label in labels:
        x, y = a == label, b == label
        scores.append(2.0 * float(np.logical_and(x, y).sum()) / (int(x.sum()) + int(y.sum())))
    return min(scores)


def verify_golden(folder: str | Path, model_file: str | Path | None = None, device: str = "cpu") -> list[dict]:
    """Segment the golden cases of a model's ``folder`` again (with ``model_file``: its ``models/model.pt`` by
    default, or the ONNX export) and compare each mask with the expected one; each result has ``case``, ``dice``
    (the least of a label's, :func:`mask_dice`), ``ok`` (Dice ≥ :data:`VERIFY_DICE`, the input unchanged since the
    golden set was written) and ``error`` (why not, or ``None``). Nothing is written in ``folder``.

    Raises:
        GoldenError: for golden cases :func:`read_golden` refuses, or an entry whose input is another case's
            (the name its input gives, or the mask it is segmented into, is not the entry's).
    """
    folder = Path(folder)
    cases = read_golden(folder)
    model_file = Path(model_file or folder / "models" / MODEL_FILE)
    predictor = Predictor(model_settings(model_file), model_file, device=device)
    with tempfile.TemporaryDirectory() as out:
        records = _segment(predictor, [folder / case.input for case in cases], Path(out))
        results = []
        for case in cases:
            record = records[str(folder / case.input)]
            if record["status"] != "ok":
                results.append({"case": case.name, "dice": 0.0, "ok": False, "error": record["error"]})
                continue
            mask = Path(record["outputs"]["mask"])
            if record["case"] != case.name or mask.name != Path(case.expected).name:
                raise GoldenError(
                    f"{folder / GOLDEN_FILE}: the entry {case.name} points to another case's files (its input is "
                    f"case {record['case']}, its expected mask {case.expected})"
                )
            try:
                dice = mask_dice(read_mask(mask), read_mask(folder / case.expected))
            except ValueError as error:
                message = f"{folder / case.expected}: {error} (the expected mask's, this machine's)"
                results.append({"case": case.name, "dice": 0.0, "ok": False, "error": message})
                continue
            unchanged = content_digest(folder / case.input) == case.input_sha256
            error = None if unchanged else f"{folder / case.input}: changed since the golden set was written"
            results.append({"case": case.name, "dice": dice, "ok": dice >= VERIFY_DICE and unchanged, "error": error})
    return results
