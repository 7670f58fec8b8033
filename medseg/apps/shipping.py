"""A trained model shipped with medseg: its folder in ``medseg/pretrained/<name>/``, checked, documented, digested.

:func:`ship_model` (``scripts/ship_model.py``) turns a trained model's folder (a bundle run's ``--output_dir``:
``models/model.pt`` and ``settings.json``, ``history.json``, ``eval/``, ``datalist.json``) into a shipped model
(:mod:`medseg.pretrained`), built in a hidden folder beside the target and renamed into place only when complete:

1. **Weights**: stored in half precision (:func:`medseg.export.half_precision_checkpoint`) when every golden mask
   stays the same as the single-precision weights' (Dice :data:`HALF_MIN_DICE` = 1: every pixel; a caller may
   accept less, and the manifest records what was accepted and measured); else as they are.
2. **Golden cases** from the inputs given (they ship: they must be redistributable, e.g. CC0 radiographs or
   ``medseg synth`` images), with the masks the shipped weights give them (:func:`medseg.apps.golden.make_golden`).
3. **ONNX**: the export (:func:`medseg.export.export_onnx`), which must give the golden masks (``--verify``), its
   weights then stored in half precision too where the checkpoint's are (lossless:
   :func:`medseg.export.half_precision_initializers`).
4. **8-bit ONNX**: quantized with ONNX Runtime's tools, calibrated on the golden inputs
   (:func:`medseg.export.quantize_onnx`), kept only when every golden mask keeps Dice ≥ :data:`INT8_MIN_DICE`
   against full precision.
5. **Model card** (:func:`medseg.apps.model_card.card_text`) with the card info given (intended use, data and
   licences, results per data source, failure modes) and what shipping measured.
6. **Manifest** with every file's SHA-256 and size; a folder above :data:`MAX_MODEL_BYTES` is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medseg.export import (
    QUANTIZATION,
    ExportError,
    calibration_batches,
    export_onnx,
    half_precision_checkpoint,
    half_precision_initializers,
    quantize_onnx,
)
from medseg.files import content_digest
from medseg.inference import (
    MODEL_FILE,
    ONNX_FILE,
    ONNX_INT8_FILE,
    InferenceOptions,
    Predictor,
    find_cases,
    model_settings,
    run_inference,
)
from medseg.pipeline import mask_postprocessing
from medseg.pretrained import (
    Manifest,
    check_name,
    file_records,
    pretrained_root,
    write_manifest,
)

from .golden import make_golden, mask_dice, read_mask, verify_golden
from .model_card import MODEL_CARD, CardInfo, card_text, default_input, results_by_source, test_dice

__all__ = ["HALF_MIN_DICE", "INT8_MIN_DICE", "MAX_MODEL_BYTES", "ShipError", "ShipReport", "ship_model"]

#: The least Dice of a golden mask of the half-precision weights against single precision for them to be shipped:
#: 1, the same masks (half the size is no reason to change what the model gives).
HALF_MIN_DICE = 1.0
#: The least Dice of a golden mask of the 8-bit network against full precision for it to be shipped.
INT8_MIN_DICE = 0.99
#: The most bytes a shipped model's folder may hold (10 MB).
MAX_MODEL_BYTES = 10_000_000


class ShipError(ValueError):
    """A model folder that cannot be shipped (incomplete, too large, an export that does not give its masks); one
    line naming the file or the argument."""


@dataclass(frozen=True)
class ShipReport:
    """What :func:`ship_model` wrote and measured."""

    folder: Path
    manifest: Manifest
    size: int
    #: each golden mask's Dice: half-precision weights against single precision
    half_dice: list[float]
    #: each golden mask's Dice: ONNX Runtime against PyTorch
    onnx_dice: list[float]
    #: each golden mask's Dice: the 8-bit network against full precision (empty when it could not be made)
    int8_dice: list[float] = field(default_factory=list)
    int8_kept: bool = False
    #: why the 8-bit network was not kept
    int8_note: str = ""


def _masks(predictor: Predictor, inputs: Sequence[Path], out: Path) -> list[Any]:
    """The masks ``predictor`` gives ``inputs`` (as the model applies itself), in their order."""
    options = InferenceOptions(postprocessing=mask_postprocessing(predictor.settings))
    summary = run_inference(predictor, find_cases([str(path) for path in inputs]), out, options, progress=False)
    records = {record["input"]: record for record in summary["cases"]}
    masks = []
    for path in inputs:
        record = records[str(path)]
        if record["status"] != "ok":
            raise ShipError(f"{path}: the golden input cannot be segmented: {record['error']}")
        masks.append(read_mask(record["outputs"]["mask"]))
    return masks


def _commit() -> str:
    """The medseg checkout's commit (``+ uncommitted changes`` when its tracked files differ from it)."""
    checkout = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=checkout,
                               capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        raise ShipError(f"{checkout}: not a git checkout: give the training commit (--commit)") from None
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def _check_source(model_dir: Path, info: CardInfo) -> None:
    for relative in (f"models/{MODEL_FILE}", "datalist.json", "eval/summary.json"):
        if not (model_dir / relative).is_file():
            raise ShipError(f"{model_dir / relative}: missing: ship a trained and evaluated model's folder")
    if not info.training_command:
        raise ShipError("card info: no training_command: the command that trained the model must be recorded")
    if not info.training_data or not all(entry.get("licence") for entry in info.training_data):
        raise ShipError("card info: training_data must list each data source with its licence (terms of use)")


def _shipping_section(report: dict[str, Any], name: str) -> str:
    """The card's section on the shipped files: precision, runtimes and the golden masks' agreement."""
    lines = [
        "## Shipped files",
        "",
        f"`medseg infer --model {name}` runs it (`--runtime onnxruntime` for ONNX Runtime"
        + (", `--runtime onnxruntime-int8` for the 8-bit network" if report["int8_kept"] else "")
        + "); `manifest.json` holds every file's SHA-256, checked before each use.",
        "",
        f"- Weights stored in {report['precision']} (`models/model.pt`), computed in float32; the golden masks' least "
        f"Dice of the half-precision weights against float32: {min(report['half_dice']):.4f} (half precision "
        f"is stored when it is at least {report['rules']['float16']}).",
        f"- ONNX (`models/model.onnx`): least golden Dice against PyTorch {min(report['onnx_dice']):.4f}.",
    ]
    if report["int8_kept"]:
        lines.append(
            "- 8-bit ONNX (`models/model.int8.onnx`, static QDQ quantization by ONNX Runtime, calibrated on the "
            f"golden inputs): least golden Dice against full precision {min(report['int8_dice']):.4f} (kept when "
            f"at least {report['rules']['int8']}). Its masks are close to, not the same as, full precision's."
        )
    else:
        lines.append(f"- No 8-bit ONNX: {report['int8_note']}.")
    return "\n".join(lines) + "\n"


def _quantize(staging: Path, settings: Any, inputs: list[Path], int8_min_dice: float) -> tuple[list[float], str]:
    """Quantize the staging folder's export; keep it when every golden mask keeps ``int8_min_dice``; return the
    Dice values and, when it is not kept, why."""
    models = staging / "models"
    try:
        calibration = calibration_batches(Predictor(settings, models / ONNX_FILE), inputs)
        quantize_onnx(models / ONNX_FILE, models / ONNX_INT8_FILE, calibration)
    except ExportError as error:
        return [], f"ONNX Runtime's quantization failed ({error})"
    results = verify_golden(staging, models / ONNX_INT8_FILE)
    dice = [result["dice"] for result in results]
    if all(result["error"] is None for result in results) and min(dice) >= int8_min_dice:
        return dice, ""
    (models / ONNX_INT8_FILE).unlink()
    return dice, f"quantized, its least golden Dice against full precision was {min(dice):.4f} (< {int8_min_dice})"


def ship_model(
    model_dir: str | Path,
    name: str,
    golden_inputs: Sequence[str | Path],
    info: CardInfo,
    root: str | Path | None = None,
    commit: str | None = None,
    overwrite: bool = False,
    quantize: bool = True,
    half_min_dice: float = HALF_MIN_DICE,
    int8_min_dice: float = INT8_MIN_DICE,
    max_bytes: int = MAX_MODEL_BYTES,
) -> ShipReport:
    """Ship the trained model of ``model_dir`` as ``root/name`` (``root``: the package's shipped models by default,
    :func:`medseg.pretrained.pretrained_root`), with golden cases made from ``golden_inputs`` and the card
    ``info`` (which must give the training command and each data source's licence). See the module docstring.

    Raises:
        ShipError: for an incomplete model folder or card info, golden inputs that cannot be segmented, an ONNX export
            that does not give the golden masks, or a folder above ``max_bytes``; nothing is written then.
        ModelCardError, SettingsFileError, CheckpointError, ExportError: from the pieces, naming the file.
    """
    check_name(name)
    model_dir = Path(model_dir)
    root = Path(root) if root is not None else pretrained_root()
    target = root / name
    _check_source(model_dir, info)
    if target.exists() and not overwrite:
        raise ShipError(f"{target}: a model of that name is shipped; give --overwrite to replace it")
    if not golden_inputs:
        raise ShipError("no golden inputs: give redistributable images (CC0 radiographs, medseg synth images)")
    source = model_dir / "models" / MODEL_FILE
    settings = model_settings(source)
    info = replace(info, commit=commit or info.commit or _commit())
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.shipping.", dir=root))
    try:
        models = staging / "models"
        models.mkdir()
        with tempfile.TemporaryDirectory(prefix="medseg-ship-") as scratch:
            inputs = [Path(path).resolve() for path in golden_inputs]
            full = _masks(Predictor(settings, source), inputs, Path(scratch) / "float32")
            half_precision_checkpoint(source, models / MODEL_FILE)
            settings.save(models)
            half = _masks(Predictor(settings, models / MODEL_FILE), inputs, Path(scratch) / "float16")
        half_dice = [mask_dice(a, b) for a, b in zip(full, half)]
        precision = "float16" if min(half_dice) >= half_min_dice else "float32"
        if precision == "float32":
            shutil.copyfile(source, models / MODEL_FILE)
        tested = {str(Path(path).resolve()): value for path, value in test_dice(model_dir, required=False).items()}
        cases = make_golden(staging, Predictor(settings, models / MODEL_FILE),
                            [(path, tested.get(str(path))) for path in inputs])  # fmt: skip
        export_onnx(staging)
        copies = [staging / case.input for case in cases]
        onnx = verify_golden(staging, models / ONNX_FILE)
        failed = [result for result in onnx if not result["ok"]]
        if failed:
            raise ShipError(f"{models / ONNX_FILE}: does not give the golden masks: {failed[0]}")
        int8_dice, int8_note = _quantize(staging, settings, copies, int8_min_dice) if quantize else ([], "not asked")
        if precision == "float16":  # after quantizing, which reads float32 weights
            half_precision_initializers(models / ONNX_FILE)
            if not all(result["ok"] for result in verify_golden(staging, models / ONNX_FILE)):
                raise ShipError(f"{models / ONNX_FILE}: its half-precision weights change the golden masks")
        runtimes = ["pytorch", "onnxruntime"] + (["onnxruntime-int8"] if (models / ONNX_INT8_FILE).is_file() else [])
        measured = {
            "precision": precision,
            "half_dice": half_dice,
            "onnx_dice": [result["dice"] for result in onnx],
            "int8_dice": int8_dice,
            "int8_kept": "onnxruntime-int8" in runtimes,
            "int8_note": int8_note,
            "rules": {"float16": half_min_dice, "int8": int8_min_dice},
        }
        card = card_text(
            model_dir, settings, test_dice(model_dir, required=False), cases, info,
            verify_command=f"medseg infer --model {name} --verify", title=f"# Model card: {name}",
            written_by="`scripts/ship_model.py`",
        )  # fmt: skip
        (staging / MODEL_CARD).parent.mkdir(parents=True, exist_ok=True)
        (staging / MODEL_CARD).write_text(card + "\n" + _shipping_section(measured, name))
        manifest = Manifest(
            name=name,
            task=settings.task,
            labels=list(settings.labels),
            input=info.input or default_input(settings),
            training_data=info.training_data,
            results=info.results if info.results is not None else results_by_source(model_dir),
            training_command=info.training_command or "",
            commit=info.commit or "",
            datalist_sha256=content_digest(model_dir / "datalist.json"),
            files=file_records(staging),
            weights_precision=precision,
            runtimes=runtimes,
            checks={
                "half_precision_min_dice": round(min(half_dice), 6),
                "onnxruntime_min_dice": round(min(measured["onnx_dice"]), 6),
                "int8_min_dice": round(min(int8_dice), 6) if int8_dice else None,
                "int8": "kept" if measured["int8_kept"] else int8_note,
                "quantization": QUANTIZATION,
                "rules": measured["rules"],
            },
        )
        write_manifest(staging, manifest)
        size = sum(path.stat().st_size for path in staging.rglob("*") if path.is_file())
        if size > max_bytes:
            largest = sorted(manifest.files.items(), key=lambda item: -item[1]["size"])[:3]
            raise ShipError(
                f"{target}: would hold {size / 1e6:.1f} MB, more than {max_bytes / 1e6:.1f} MB (largest: "
                + ", ".join(f"{relative} {entry['size'] / 1e6:.1f} MB" for relative, entry in largest)
                + ")"
                + (
                    f"; the weights stay float32: half precision changed the golden masks (least Dice "
                    f"{min(half_dice):.4f} < {half_min_dice}; --half-min-dice accepts less)"
                    if precision == "float32"
                    else ""
                )
            )
        _replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ShipReport(
        folder=target,
        manifest=manifest,
        size=size,
        half_dice=half_dice,
        onnx_dice=measured["onnx_dice"],
        int8_dice=int8_dice,
        int8_kept=measured["int8_kept"],
        int8_note=int8_note,
    )


def _publish_modes(folder: Path) -> None:
    """The modes a new file and folder get under the umask, for everything under ``folder`` (``mkdtemp`` makes it
    private; copied golden inputs keep their source's mode)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def _replace(staging: Path, target: Path) -> None:
    """Rename the complete ``staging`` folder to ``target``, the model shipped there before removed."""
    _publish_modes(staging)
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.with_name(f".{target.name}.retired.{os.getpid()}")
    os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
