"""A model card per trained model, and golden cases that check on another machine that it still gives its masks.

``medseg card --model-dir DIR`` (:func:`write_model_card`) writes ``DIR/docs/model_card.md`` from the bundle's own
outputs, nothing typed by hand: the record (``models/settings.json``: task, network, pre- and post-processing), the
training history (``history.json``), the data (``datalist.json``: sources and counts, when training wrote it) and
the evaluation (``eval/summary.json`` and the per-case ``eval/test_mean_dice_raw.csv``), with the limits that
follow from them. It also keeps a few **golden cases**: test cases of the lowest, median and highest Dice, copied
into ``DIR/golden/inputs/`` with the masks the model gives them on this machine (``DIR/golden/expected/``) and
``DIR/golden/golden.json``.

``medseg infer --model-dir DIR --verify`` (:func:`verify_golden`) segments the golden inputs again, on the machine at
hand and with the backend asked (PyTorch, or the ONNX export), and fails when any mask's Dice against its expected
mask is below :data:`VERIFY_DICE`: a changed library, a damaged or replaced checkpoint, another runtime that computes
something else.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg.files import atomic_path, content_digest, write_json
from medseg.inference import InferenceOptions, Predictor, find_cases, model_settings, run_inference
from medseg.pipeline import ModelSettings, mask_postprocessing

__all__ = [
    "GOLDEN_FILE",
    "MODEL_CARD",
    "VERIFY_DICE",
    "GoldenCase",
    "ModelCardError",
    "verify_golden",
    "write_model_card",
]

#: Where the card is written, in the bundle.
MODEL_CARD = "docs/model_card.md"
#: The golden cases' record, in the bundle.
GOLDEN_FILE = "golden/golden.json"
#: The least Dice between a golden case's mask on this machine and its expected mask for ``--verify`` to pass.
VERIFY_DICE = 0.99


class ModelCardError(ValueError):
    """A bundle without what a card is written from (its record, its evaluation); the message names the file."""


@dataclass(frozen=True)
class GoldenCase:
    """A golden case: its input (copied into the bundle), the mask expected of it, its test Dice when evaluated."""

    name: str
    input: str
    expected: str
    test_dice: float
    input_sha256: str


def _read_json(path: Path, what: str) -> object:
    if not path.is_file():
        raise ModelCardError(f"{path}: no {what}")
    return json.loads(path.read_text())


def _test_dice(bundle: Path) -> dict[str, float]:
    """The per-case test Dice of the bundle's evaluation (MONAI's ``MetricsSaver`` CSV), by input file."""
    path = bundle / "eval" / "test_mean_dice_raw.csv"
    if not path.is_file():
        raise ModelCardError(f"{path}: no per-case evaluation; evaluate the bundle first (configs/evaluate.json)")
    with open(path) as stream:
        return {row["filename"]: float(row["mean"]) for row in csv.DictReader(stream)}


def _golden_inputs(dice: dict[str, float], count: int) -> list[tuple[str, float]]:
    """``count`` test cases spread over the Dice distribution: the lowest, the median, the highest, ..."""
    ranked = sorted(dice.items(), key=lambda item: item[1])
    picks = sorted({round(index) for index in np.linspace(0, len(ranked) - 1, min(count, len(ranked)))})
    return [ranked[index] for index in picks]


def _segment(predictor: Predictor, inputs: Sequence[Path], out: Path) -> dict[str, dict]:
    """``medseg infer``'s masks of ``inputs`` into ``out``, as the model records them; records by input path."""
    options = InferenceOptions(postprocessing=mask_postprocessing(predictor.settings))
    summary = run_inference(predictor, find_cases([str(path) for path in inputs]), out, options, progress=False)
    return {record["input"]: record for record in summary["cases"]}


def _make_golden(bundle: Path, predictor: Predictor, dice: dict[str, float], count: int) -> list[GoldenCase]:
    golden = bundle / "golden"
    if golden.exists():
        shutil.rmtree(golden)
    (golden / "inputs").mkdir(parents=True)
    copies = {}
    for source, value in _golden_inputs(dice, count):
        source_path = Path(source)
        copy = golden / "inputs" / source_path.name
        (shutil.copytree if source_path.is_dir() else shutil.copy2)(source_path, copy)
        copies[str(copy)] = value
    records = _segment(predictor, [Path(path) for path in copies], golden / "expected")
    cases = []
    for path, value in copies.items():
        record = records[path]
        if record["status"] != "ok":
            raise ModelCardError(f"{path}: the golden case could not be segmented: {record['error']}")
        cases.append(
            GoldenCase(
                name=record["case"],
                input=str(Path(path).relative_to(bundle)),
                expected=str(Path(record["outputs"]["mask"]).relative_to(bundle)),
                test_dice=value,
                input_sha256=content_digest(Path(path)),
            )
        )
    write_json(bundle / GOLDEN_FILE, [asdict(case) for case in cases])
    return cases


def _mask(path: str | Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))) > 0


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total


def verify_golden(bundle: str | Path, model_file: str | Path | None = None, device: str = "cpu") -> list[dict]:
    """Segment the golden cases of ``bundle`` again (with ``model_file``: its ``models/model.pt`` by default, or
    the ONNX export) and compare each mask with the expected one; each result has ``case``, ``dice`` and ``ok``
    (Dice ≥ :data:`VERIFY_DICE`, the input unchanged since the card was written).

    Raises:
        ModelCardError: for a bundle without golden cases (``medseg card`` writes them).
    """
    bundle = Path(bundle)
    cases = [GoldenCase(**case) for case in _read_json(bundle / GOLDEN_FILE, "golden cases (run medseg card first)")]
    model_file = Path(model_file or bundle / "models" / "model.pt")
    predictor = Predictor(model_settings(model_file), model_file, device=device)
    with tempfile.TemporaryDirectory() as out:
        records = _segment(predictor, [bundle / case.input for case in cases], Path(out))
        results = []
        for case in cases:
            record = records[str(bundle / case.input)]
            unchanged = content_digest(bundle / case.input) == case.input_sha256
            if record["status"] != "ok":
                results.append({"case": case.name, "dice": 0.0, "ok": False, "error": record["error"]})
                continue
            dice = _dice(_mask(record["outputs"]["mask"]), _mask(bundle / case.expected))
            error = None if unchanged else f"{bundle / case.input}: changed since the card was written"
            results.append({"case": case.name, "dice": dice, "ok": dice >= VERIFY_DICE and unchanged, "error": error})
    return results


def _parameters(settings: ModelSettings) -> int:
    from medseg.pipeline import build_network

    return sum(parameter.numel() for parameter in build_network(settings).parameters())


def _card(bundle: Path, settings: ModelSettings, dice: dict[str, float], golden: list[GoldenCase]) -> str:
    history = _read_json(bundle / "history.json", "training history") if (bundle / "history.json").is_file() else []
    summary = _read_json(bundle / "eval" / "summary.json", "evaluation summary")
    datalist = json.loads((bundle / "datalist.json").read_text()) if (bundle / "datalist.json").is_file() else {}
    values = np.array(sorted(dice.values()))
    best = max(history, key=lambda epoch: epoch.get("val_mean_dice", -1.0)) if history else {}
    sources = sorted({entry.get("source", "?") for key in ("training", "validation", "test")
                      for entry in datalist.get(key, [])})  # fmt: skip
    lines = [
        f"# Model card: {settings.task} segmentation, {settings.network_name}",
        "",
        f"Written by `medseg card` from this bundle's own outputs ({bundle.resolve().name}): its record "
        "(`models/settings.json`), training history, data list and evaluation. Nothing here is typed by hand.",
        "",
        "## Model",
        "",
        "| setting | value |",
        "|---|---|",
        f"| task (and options) | `{settings.task}` {json.dumps(settings.task_options)} |",
        f"| network | `{settings.network_name}` {json.dumps(settings.network_kwargs)}, {_parameters(settings):,} "
        "parameters |",
        f"| input | {settings.in_channels} channel(s), {settings.spatial_size[0]}×{settings.spatial_size[1]} "
        f"({'axial slices of volumes' if settings.volumetric else 'images resized to it'}); intensity "
        f"{json.dumps(settings.intensity)} |",
        f"| training loss | `{settings.loss_name}` |",
        f"| applied with | threshold {settings.threshold}, keep largest {settings.keep_largest}, fill holes "
        f"{settings.fill_holes}, test-time flips {list(settings.test_time_flip_axes)}, test-time shift "
        f"{settings.test_time_shift} px |",
        "",
        "## Training",
        "",
    ]
    if history:
        lines += [
            f"{len(history)} epochs in {history[-1].get('seconds', float('nan')) / 60:.1f} minutes; best validation "
            f"Dice {best.get('val_mean_dice', float('nan')):.4f} at epoch {best.get('epoch')}.",
            "",
        ]
    else:
        lines += ["No `history.json` in the bundle: the training is not recorded.", ""]
    if datalist:
        counts = ", ".join(f"{len(datalist.get(key, []))} {key}" for key in ("training", "validation", "test"))
        lines += [f"Data: {counts} cases from {', '.join(sources)} (`datalist.json`).", ""]
    lines += [
        "## Evaluation (the held-out test cases)",
        "",
        "| metric | mean | SD | cases |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {row['mean']:.4f} | {row['std']:.4f} | {row['n']} |" for name, row in summary.items()),
        "",
        f"Per-case Dice: lowest {values[0]:.4f}, 5th percentile {np.percentile(values, 5):.4f}, median "
        f"{np.median(values):.4f}, highest {values[-1]:.4f} ({values.size} cases).",
        "",
        "## Golden cases",
        "",
        f"`medseg infer --model-dir {bundle.name} --verify` segments these again and fails (exit 1) when a mask's Dice "
        f"against the expected one falls below {VERIFY_DICE}:",
        "",
        "| case | input | expected mask | test Dice |",
        "|---|---|---|---:|",
        *(f"| {case.name} | `{case.input}` | `{case.expected}` | {case.test_dice:.4f} |" for case in golden),
        "",
        "## Known limits",
        "",
        f"- Evaluated on {values.size} test cases"
        + (f" from {', '.join(sources)}" if sources else "")
        + "; other hospitals, scanners and populations are not measured by this card (how a model trained at one "
        "hospital scores at another: medseg's docs/results.md).",
        f"- Its worst test cases score Dice {values[0]:.3f}: review its masks (`medseg infer --uncertainty "
        "--review-threshold`).",
        "- A research model: not a medical device.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(bundle: str | Path, golden: int = 3) -> Path:
    """Write ``bundle``'s ``docs/model_card.md`` and its ``golden`` golden cases; return the card's path.

    Raises:
        ModelCardError: for a bundle without its record or its evaluation.
        SettingsFileError, CheckpointError: for a bundle whose record or weights cannot be read.
    """
    bundle = Path(bundle)
    settings = model_settings(bundle / "models" / "model.pt")
    dice = _test_dice(bundle)
    predictor = Predictor(settings, bundle / "models" / "model.pt")
    cases = _make_golden(bundle, predictor, dice, golden)
    path = bundle / MODEL_CARD
    with atomic_path(path) as temporary:
        temporary.write_text(_card(bundle, settings, dice, cases))
    return path
