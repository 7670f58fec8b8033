"""A model card per trained model, and golden cases that check on another machine that it still gives its masks.

``medseg card --model-dir DIR`` (:func:`write_model_card`) writes ``DIR/docs/model_card.md`` from the bundle's own
outputs, nothing typed by hand: the record (``models/settings.json``: task, network, pre- and post-processing), the
training history (``history.json``), the data (``datalist.json``: sources and counts, when training wrote it) and
the evaluation (``eval/summary.json`` and the per-case ``eval/test_mean_dice_raw.csv``), with the limits that
follow from them. It also keeps a few **golden cases**: test cases of the lowest, median and highest Dice, copied
into ``DIR/golden/inputs/`` with the masks the model gives them on this machine (``DIR/golden/expected/``) and
``DIR/golden/golden.json``; or, given inputs (``golden_inputs``: a shipped model's golden cases must be
redistributable), those. What the outputs cannot say (the intended use, the data's licences, results measured
elsewhere, failure modes seen) comes from a card-info JSON file (:class:`CardInfo`), which the card prints as given.

``medseg infer --model-dir DIR --verify`` (:func:`medseg.apps.golden.verify_golden`) segments the golden inputs
again, on the machine at hand and with the backend asked (PyTorch, or the ONNX export), and fails when any mask's
Dice against its expected mask is below :data:`VERIFY_DICE`: a changed library, a damaged or replaced checkpoint,
another runtime that computes something else. The golden cases themselves are :mod:`medseg.apps.golden`'s.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from medseg.files import atomic_path, content_digest, read_json
from medseg.inference import MODEL_FILE, Predictor, model_settings
from medseg.pipeline import ModelSettings

from .golden import VERIFY_DICE, GoldenCase, make_golden

__all__ = [
    "INTENDED_USE",
    "MODEL_CARD",
    "CardInfo",
    "ModelCardError",
    "card_text",
    "default_input",
    "results_by_source",
    "test_dice",
    "write_model_card",
]

#: Where the card is written, in the bundle.
MODEL_CARD = "docs/model_card.md"
#: What a card says of the intended use unless its card info says otherwise.
INTENDED_USE = (
    "Research: segmenting images for studies, method development and teaching. Not a medical device: not for "
    "diagnosis, treatment or any clinical decision; a qualified person reviews its masks before any use of them."
)


class ModelCardError(ValueError):
    """A bundle without what a card is written from (its record, its evaluation); the message names the file."""


@dataclass(frozen=True)
class CardInfo:
    """What a model card says that the model's own outputs cannot: read from a JSON object of these keys (all
    optional) by :meth:`read`.

    Args:
        intended_use: the intended use (default :data:`INTENDED_USE`: research, not a medical device).
        input: the input the model expects, in one line (default: from its settings).
        training_data: per data source: ``name`` (the datalist's source name), ``cases``, ``licence`` (terms of use),
            ``source`` (where it comes from), any more.
        results: measured results per data source, free-form (default: the evaluation's, per source,
            :func:`results_by_source`).
        failure_modes: failure modes seen in the validation or test cases, one sentence each.
        training_command: the command that trained the model.
        commit: the medseg commit it was trained at.
    """

    intended_use: str = INTENDED_USE
    input: str | None = None
    training_data: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] | None = None
    failure_modes: list[str] = field(default_factory=list)
    training_command: str | None = None
    commit: str | None = None

    @classmethod
    def read(cls, path: str | Path) -> CardInfo:
        """The card info of a JSON file.

        Raises:
            ModelCardError: naming the file, for one that is not JSON, not an object, or has unknown keys or values
                of the wrong kind.
        """
        path = Path(path)
        record = read_json(path, "card info", ModelCardError)
        if not isinstance(record, dict):
            raise ModelCardError(f"{path}: card info is a JSON object, got {type(record).__name__}")
        known = {item.name: item for item in fields(cls)}
        unknown = sorted(set(record) - set(known))
        if unknown:
            raise ModelCardError(f"{path}: unknown card info key(s) {', '.join(unknown)}; known: {', '.join(known)}")
        kinds = {"training_data": list, "results": dict, "failure_modes": list}
        for key, value in record.items():
            kind = kinds.get(key, str)
            if value is not None and not isinstance(value, kind):
                raise ModelCardError(f"{path}: {key} must be a JSON {kind.__name__}, got {type(value).__name__}")
        if not all(isinstance(entry, dict) for entry in record.get("training_data") or []):
            raise ModelCardError(f"{path}: each training_data entry is an object (name, cases, licence, source)")
        return cls(**{key: value for key, value in record.items() if value is not None})


def _read_json(path: Path, what: str) -> object:
    if not path.is_file():
        raise ModelCardError(f"{path}: no {what}")
    return json.loads(path.read_text())


def _per_case(path: Path) -> dict[str, float]:
    """A per-case metric of MONAI's ``MetricsSaver`` CSV, by input file."""
    with open(path) as stream:
        return {row["filename"]: float(row["mean"]) for row in csv.DictReader(stream)}


def test_dice(bundle: Path, required: bool = True) -> dict[str, float]:
    """The per-case test Dice of the bundle's evaluation (``eval/test_mean_dice_raw.csv``), by input file; empty when
    absent and not ``required``.

    Raises:
        ModelCardError: when absent and ``required``.
    """
    path = bundle / "eval" / "test_mean_dice_raw.csv"
    if not path.is_file():
        if not required:
            return {}
        raise ModelCardError(f"{path}: no per-case evaluation; evaluate the bundle first (configs/evaluate.json)")
    return _per_case(path)


def _spread(values: Sequence[float]) -> dict[str, float | int]:
    array = np.asarray(values, dtype=float)
    return {
        "mean": round(float(array.mean()), 4),
        "sd": round(float(array.std(ddof=1)) if array.size > 1 else 0.0, 4),
        "min": round(float(array.min()), 4),
        "p5": round(float(np.percentile(array, 5)), 4),
        "median": round(float(np.median(array)), 4),
        "max": round(float(array.max()), 4),
        "n": int(array.size),
    }


def results_by_source(bundle: str | Path) -> dict[str, dict[str, dict[str, float | int]]]:
    """The evaluation's per-case metrics (``eval/<metric>_raw.csv``) summarised per data source (each case's
    ``source`` in ``datalist.json``; ``all`` for every case): ``{source: {metric: {mean, sd, min, p5, median, max,
    n}}}``. Empty without per-case metrics."""
    bundle = Path(bundle)
    datalist = bundle / "datalist.json"
    entries = json.loads(datalist.read_text()).get("training", []) if datalist.is_file() else []
    sources = {str(Path(entry["image"]).resolve()): entry.get("source", "?") for entry in entries if "image" in entry}
    results: dict[str, dict[str, dict[str, float | int]]] = {}
    for path in sorted((bundle / "eval").glob("*_raw.csv")):
        metric = path.name[: -len("_raw.csv")]
        values = _per_case(path)
        groups: dict[str, list[float]] = {}
        for filename, value in values.items():
            if np.isfinite(value):
                groups.setdefault(sources.get(str(Path(filename).resolve()), "?"), []).append(value)
        if len(groups) > 1 or not groups:
            groups["all"] = [value for value in values.values() if np.isfinite(value)]
        for source, group in groups.items():
            if group:
                results.setdefault(source, {})[metric] = _spread(group)
    return results


def _golden_inputs(dice: dict[str, float], count: int) -> list[tuple[str, float]]:
    """``count`` test cases spread over the Dice distribution: the lowest, the median, the highest, ..."""
    ranked = sorted(dice.items(), key=lambda item: item[1])
    picks = sorted({round(index) for index in np.linspace(0, len(ranked) - 1, min(count, len(ranked)))})
    return [ranked[index] for index in picks]


def _parameters(settings: ModelSettings) -> int:
    from medseg.pipeline import build_network

    return sum(parameter.numel() for parameter in build_network(settings).parameters())


def _round(value: float | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def _cell(value: object) -> str:
    return "—" if value is None or value == "" else str(value).replace("|", "/")


def _result_line(result: object) -> str:
    """A metric's result in words: ``mean ± SD (lowest, 5th percentile, median, cases)`` for a spread, else as given."""
    if not (isinstance(result, dict) and isinstance(result.get("mean"), (int, float))):
        return json.dumps(result)
    text = f"{result['mean']:.4f}"
    if isinstance(result.get("sd"), (int, float)):
        text += f" ± {result['sd']:.4f}"
    words = (("min", "lowest"), ("p5", "5th percentile"), ("median", "median"), ("max", "highest"))
    details = [f"{word} {result[key]:.4f}" for key, word in words if isinstance(result.get(key), (int, float))]
    if "n" in result:
        details.append(f"{result['n']} cases")
    return text + (f" ({', '.join(details)})" if details else "")


def _results_lines(results: dict[str, Any]) -> list[str]:
    lines = ["| data source | metric | result |", "|---|---|---|"]
    for source, metrics in results.items():
        if isinstance(metrics, dict):
            lines += [f"| {_cell(source)} | {_cell(metric)} | {_cell(_result_line(value))} |"
                      for metric, value in metrics.items()]  # fmt: skip
        else:
            lines.append(f"| {_cell(source)} | | {_cell(json.dumps(metrics))} |")
    return lines


def default_input(settings: ModelSettings) -> str:
    """The input a model takes, in one line, from its settings."""
    kind = "volumes (NIfTI, NRRD, MHA, DICOM series), read slice by slice" if settings.volumetric else "2D images"
    return (
        f"{settings.task} {kind}: {settings.in_channels} channel(s), any size (resized to "
        f"{settings.spatial_size[0]}×{settings.spatial_size[1]} for the network, masks on the input's grid)"
    )


def card_text(
    bundle: str | Path,
    settings: ModelSettings,
    dice: dict[str, float],
    golden: Sequence[GoldenCase],
    info: CardInfo | None = None,
    verify_command: str | None = None,
    title: str | None = None,
    written_by: str = "`medseg card`",
) -> str:
    """The model card of the trained model in ``bundle`` (its history, data list and evaluation), applied with
    ``settings``, with its per-case test ``dice``, its ``golden`` cases and what ``info`` says."""
    bundle, info = Path(bundle), info or CardInfo()
    history = _read_json(bundle / "history.json", "training history") if (bundle / "history.json").is_file() else []
    summary = _read_json(bundle / "eval" / "summary.json", "evaluation summary")
    datalist = json.loads((bundle / "datalist.json").read_text()) if (bundle / "datalist.json").is_file() else {}
    values = np.array(sorted(dice.values()))
    best = max(history, key=lambda epoch: epoch.get("val_mean_dice", -1.0)) if history else {}
    sources = sorted({entry.get("source", "?") for key in ("training", "validation", "test")
                      for entry in datalist.get(key, [])})  # fmt: skip
    results = info.results if info.results is not None else results_by_source(bundle)
    verify_command = verify_command or f"medseg infer --model-dir {bundle.name} --verify"
    lines = [
        title or f"# Model card: {settings.task} segmentation, {settings.network_name}",
        "",
        f"Written by {written_by} from this model's own outputs ({bundle.resolve().name}): its record "
        "(`models/settings.json`), training history, data list and evaluation; the intended use, the data's terms, "
        "the results measured elsewhere and the failure modes as its card info gives them.",
        "",
        "## Intended use",
        "",
        info.intended_use,
        "",
        f"Input: {info.input or default_input(settings)}.",
        "",
        "## Model",
        "",
        "| setting | value |",
        "|---|---|",
        f"| task (and options) | `{settings.task}` {json.dumps(settings.task_options)} |",
        f"| labels | {', '.join(settings.labels)} |",
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
    if info.training_command:
        lines += ["Trained with" + (f" medseg at commit `{info.commit}`" if info.commit else "") + ":", "",
                  "```bash", info.training_command, "```", ""]  # fmt: skip
    if datalist:
        folds = datalist.get("folds") or []
        if len(folds) == 1:  # one split: the subsets the model was trained, selected and tested on
            counts = ", ".join(f"{len(folds[0].get(key, []))} {word}" for key, word in
                               (("train", "training"), ("validation", "validation"), ("test", "test")))  # fmt: skip
        elif folds:
            counts = f"{len(datalist.get('training', []))} (in {len(folds)} folds)"
        else:
            counts = ", ".join(f"{len(datalist.get(key, []))} {key}" for key in ("training", "validation", "test"))
        digest = content_digest(bundle / "datalist.json")
        lines += [f"Data: {counts} cases from {', '.join(sources)} (`datalist.json`, SHA-256 `{digest}`).", ""]
    lines += ["## Data and licences", ""]
    if info.training_data:
        lines += [
            "| data source | cases | terms of use | from |",
            "|---|---:|---|---|",
            *(
                f"| {_cell(entry.get('name'))} | {_cell(entry.get('cases'))} | {_cell(entry.get('licence'))} | "
                f"{_cell(entry.get('source'))} |"
                for entry in info.training_data
            ),
            "",
        ]
    else:
        lines += ["Not stated: the card info gives no `training_data` with their terms of use.", ""]
    lines += [
        "## Evaluation (the held-out test cases)",
        "",
        "| metric | mean | SD | cases |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {row['mean']:.4f} | {row['std']:.4f} | {row['n']} |" for name, row in summary.items()),
        "",
    ]
    if values.size:
        lines += [
            f"Per-case Dice: lowest {values[0]:.4f}, 5th percentile {np.percentile(values, 5):.4f}, median "
            f"{np.median(values):.4f}, highest {values[-1]:.4f} ({values.size} cases).",
            "",
        ]
    if results:
        lines += ["### Results per data source", "", *_results_lines(results), ""]
    lines += [
        "## Golden cases",
        "",
        f"`{verify_command}` segments these again and fails (exit 1) when a mask's Dice against the expected one "
        f"falls below {VERIFY_DICE}:",
        "",
        "| case | input | expected mask | test Dice |",
        "|---|---|---|---:|",
        *(f"| {case.name} | `{case.input}` | `{case.expected}` | {_cell(_round(case.test_dice))} |" for case in golden),
        "",
        "## Known limits and failure modes",
        "",
        *(f"- {mode}" for mode in info.failure_modes),
    ]
    where = f" from {', '.join(sources)}" if sources else ""
    lines.append(
        f"- Evaluated on {values.size or summary_cases(summary)} test cases{where}; other hospitals, scanners and "
        "populations are not measured by this card (how a model trained at one hospital scores at another: "
        "medseg's docs/results.md)."
    )
    if values.size:
        lines.append(
            f"- Its worst test cases score Dice {values[0]:.3f}: review its masks (`medseg infer --uncertainty "
            "--review-threshold`)."
        )
    lines += ["- A research model: not a medical device.", ""]
    return "\n".join(lines)


def summary_cases(summary: dict[str, Any]) -> int:
    """The number of cases of an evaluation summary (its first metric's)."""
    return next((int(row.get("n", 0)) for row in summary.values() if isinstance(row, dict)), 0)


def write_model_card(
    bundle: str | Path,
    golden: int = 3,
    golden_inputs: Sequence[str | Path] | None = None,
    info: CardInfo | None = None,
) -> Path:
    """Write ``bundle``'s ``docs/model_card.md`` and its golden cases: ``golden`` test cases (lowest, median, highest
    Dice), or the ``golden_inputs`` given; return the card's path. ``info``: what the card says that the outputs
    cannot (:class:`CardInfo`).

    Raises:
        ModelCardError: for a bundle without its record or its evaluation.
        SettingsFileError, CheckpointError: for a bundle whose record or weights cannot be read.
    """
    bundle = Path(bundle)
    model_file = bundle / "models" / MODEL_FILE
    settings = model_settings(model_file)
    dice = test_dice(bundle, required=not golden_inputs)
    _read_json(bundle / "eval" / "summary.json", "evaluation summary (evaluate the model first: configs/evaluate.json)")
    predictor = Predictor(settings, model_file)
    by_path = {str(Path(name).resolve()): value for name, value in dice.items()}
    inputs = (
        [(path, by_path.get(str(Path(path).resolve()))) for path in golden_inputs]
        if golden_inputs
        else _golden_inputs(dice, golden)
    )
    cases = make_golden(bundle, predictor, inputs)
    path = bundle / MODEL_CARD
    with atomic_path(path) as temporary:
        temporary.write_text(card_text(bundle, settings, dice, cases, info))
    return path
