"""``medseg infer``: every case segmented, written atomically and summarised; a bad case never stops the others.

For each case (:mod:`medseg.inference.cases`) the runner checks that the input is of a kind the bundle reads,
reads it (DICOM series are checked slice by slice with :func:`medseg.dicom.check_dicom_series` first; a file is
examined by :func:`medseg.transforms.check_image_file` only when its reader fails, to say why), predicts the foreground
probability on the input's grid (:class:`medseg.inference.Predictor`), post-processes it
(:class:`medseg.transforms.MaskPostprocessing`) and writes the outputs (:mod:`medseg.inference.outputs`). A case
that fails is recorded with the reason, naming its file, and the next case goes on. ``summary.json`` is rewritten
(atomically) as cases finish, at most once a second, and at the end, so that an interrupted run keeps the record
of what it finished (all of it after Ctrl-C or SIGTERM, all but its last second after SIGKILL).

A rerun reuses a case's outputs only when its ledger (:mod:`medseg.inference.provenance`) proves that medseg
made them, unchanged since, from the same input content with the same model and settings: then the case is
skipped (its record as measured then), or, interrupted half-way, gets only its missing files. Outputs made from
another input, model or settings, and files medseg did not write, are never replaced without ``overwrite``: the
case fails with one line naming the file and what differs. The hidden temporary files a killed run may leave are
removed when their case is run again. The output folder is locked while a run writes to it
(:func:`medseg.files.output_lock`): a second run on the same folder is refused. A summary that cannot be written (a
full disk) does not stop the cases; the last attempt's failure is raised at the end.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from medseg.dicom import DicomError, check_dicom_file, check_dicom_series
from medseg.files import content_digest, output_lock, remove_stale_temporaries, write_json
from medseg.tasks import get_task
from medseg.transforms import ImageFileError, MaskPostprocessing, check_image_file, stored_orientation

from .cases import Case
from .outputs import DicomSegError, Geometry, write_dicom_seg, write_image, write_overlay, write_rtstruct
from .predictor import Predictor
from .provenance import CaseLedger, Provenance, input_digest, plan_case
from .uncertainty import BAND, uncertainty_summary

__all__ = ["InferenceOptions", "run_inference"]

#: Slices from which a volume gets its own progress bar.
LONG_VOLUME = 32
#: What a case's record says of it: ``partial`` when its mask was written but an output asked for could not be made
#: from the input (a DICOM SEG whose sources lack what it must reference).
STATUSES = ("ok", "partial", "failed", "skipped")
#: Seconds between two rewrites of ``summary.json`` while a run goes on.
SUMMARY_INTERVAL = 1.0


@dataclass(frozen=True)
class InferenceOptions:
    """What to write besides the mask, and how to post-process it."""

    postprocessing: MaskPostprocessing = field(default_factory=MaskPostprocessing)
    probabilities: bool = False
    dicom_seg: bool = False
    overlay: bool = False
    overwrite: bool = False
    #: write an RT Structure Set of the mask's contours for DICOM series inputs
    rtstruct: bool = False
    #: write the entropy map and summarise the uncertainty (:mod:`medseg.inference.uncertainty`)
    uncertainty: bool = False
    #: a case whose border band's mean entropy (bits) exceeds this is marked ``review`` (its uncertainty summarised)
    review_threshold: float | None = None


class RunIdentity:
    """The model and settings of a run, which with a case's input make its :class:`Provenance`: the model's
    settings fingerprint, the SHA-256 of the file run and the runtime; the threshold, mask cleaning, test-time
    flips and shifts, device and precision it is applied with."""

    def __init__(self, predictor: Predictor, options: InferenceOptions) -> None:
        settings = predictor.settings
        self.model = {
            "fingerprint": settings.fingerprint(),
            "weights_sha256": content_digest(predictor.model_file),
            "runtime": predictor.runtime,
        }
        self.settings = {
            **asdict(options.postprocessing),
            "test_time_flip_axes": list(settings.test_time_flip_axes),
            "test_time_shift": settings.test_time_shift,
            "device": predictor.device.type,
            "amp": predictor.amp,
        }

    def of(self, case: Case) -> Provenance:
        return Provenance(input_digest(case), self.model, self.settings)


def _targets(case: Case, output_dir: Path, options: InferenceOptions) -> dict[str, Path]:
    targets = {"mask": output_dir / f"{case.name}_seg.nii.gz"}
    if options.probabilities:
        targets["probabilities"] = output_dir / f"{case.name}_prob.nii.gz"
    if options.dicom_seg and case.is_dicom:
        targets["dicom_seg"] = output_dir / f"{case.name}_seg.dcm"
        if options.probabilities:
            targets["dicom_seg_probabilities"] = output_dir / f"{case.name}_prob_seg.dcm"
    if options.rtstruct and case.kind == "dicom-series":
        targets["rtstruct"] = output_dir / f"{case.name}_rtstruct.dcm"
    if options.overlay:
        targets["overlay"] = output_dir / f"{case.name}_overlay.png"
    if options.uncertainty:
        targets["entropy"] = output_dir / f"{case.name}_entropy.nii.gz"
    return targets


@contextlib.contextmanager
def _series_folder(case: Case) -> Iterator[Path]:
    """The case's series folder; when it holds other series too, a temporary folder of links to the chosen one.

    The volume reader (:class:`medseg.transforms.VolumeReader`) reads a folder holding exactly one series, which
    it checks slice by slice; linking the chosen files keeps that one checked reading path.
    """
    if not case.other_series:
        yield case.path
        return
    with tempfile.TemporaryDirectory(prefix=f".{case.name}.series.") as folder:
        for path in case.files:
            os.symlink(path.resolve(), Path(folder) / path.name)
        yield Path(folder)


def _check(case: Case, volumetric: bool) -> None:
    """Raise a ``ValueError`` naming the file when the case is not an image this bundle reads."""
    kinds = ("volume", "dicom-series", "dicom-file") if volumetric else ("image", "dicom-file")
    if case.problem:
        raise ValueError(f"{case.path}: {case.problem}")
    if case.kind == "special":
        raise ValueError(f"{case.path}: not a regular file (a FIFO, a socket or a device); it is not opened")
    if case.kind == "unknown":
        check_image_file(case.path)  # names what the file is not
        raise ValueError(f"{case.path}: not an image medseg reads (NIfTI, NRRD, MHA/MHD, PNG, JPEG or DICOM)")
    if case.kind not in kinds:
        what = "volumes (NIfTI, NRRD, MHA/MHD, DICOM)" if volumetric else "2D images (PNG, JPEG, DICOM)"
        raise ValueError(f"{case.path}: a {case.kind.replace('-', ' ')}; this bundle segments {what}")
    if case.kind == "dicom-series" and case.series_uid is None and case.other_series:
        found = ", ".join(f"{uid} ({n} files)" for uid, n in case.other_series.items())
        raise ValueError(f"{case.path}: no series with the requested --series-uid; series found: {found}")
    if case.kind == "dicom-file":
        check_dicom_file(case.path)


def _read(predictor: Predictor, case: Case, source: Path) -> tuple[dict, Geometry, list[Path], list[str]]:
    """The case's pre-processed image, its grid, its DICOM source files and what the summary should say of it.

    A DICOM series is checked slice by slice first. A file is read directly, and only when that fails does
    :func:`medseg.transforms.check_image_file` look at it (decoding it again) to say what is wrong with it: a
    good image is decoded once.
    """
    if case.kind == "dicom-series":
        series = check_dicom_series(source)
        sources = [case.path / path.name for path in series.files]
        notes = []
        if not series.series_uid:  # anonymised: one series by its geometry, as SimpleITK and GDCM read it
            notes.append(
                f"no SeriesInstanceUID in the {len(sources)} files (anonymised?): read as one series, since they "
                "agree in geometry"
            )
        return predictor.load(source), Geometry.of_series(series), sources, notes
    try:
        item, geometry = predictor.load(source), Geometry.of_file(case.path)
    except Exception:
        check_image_file(case.path)  # raises naming the file and the problem when it finds one
        raise
    return item, geometry, [case.path] if case.is_dicom else [], []


def _root_cause(error: BaseException) -> str:
    """The first line of medseg's own diagnosis of the file when there is one, else of the innermost error."""
    while error.__cause__ is not None and not isinstance(error, (ImageFileError, DicomError)):
        error = error.__cause__
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _process(
    predictor: Predictor, case: Case, output_dir: Path, options: InferenceOptions, run: RunIdentity
) -> dict[str, Any]:
    targets = _targets(case, output_dir, options)
    record: dict[str, Any] = {"case": case.name, "input": str(case.path), "kind": case.kind, "outputs": {}}
    if case.series_uid:
        record["series_uid"] = case.series_uid
    if case.other_series:
        record["other_series"] = case.other_series
    if options.dicom_seg and not case.is_dicom:
        record["warnings"] = ["no DICOM SEG: the input is not DICOM"]
    if options.rtstruct and case.kind != "dicom-series":
        record.setdefault("warnings", []).append("no RT Structure Set: the input is not a DICOM series")
    for target in targets.values():  # what a killed run left behind (hidden, never taken for an output)
        remove_stale_temporaries(target)
    _check(case, predictor.volumetric)
    provenance = run.of(case)
    ledger = CaseLedger.of(output_dir, case.name)
    plan = plan_case(ledger, provenance, targets, options.overwrite, str(case.path))
    if plan.action == "refuse":
        return {**record, "status": "failed", "error": plan.reason}
    if plan.action == "reuse":
        if _record_suffices(ledger.record, options):
            return _reused(ledger, record, options)
        plan.targets = {}  # the outputs are kept; the case is measured again for this run's summary
    if plan.action == "redo":
        for path in plan.stale:
            path.unlink(missing_ok=True)
        ledger.begin(provenance, str(case.path))
    result = _segment(predictor, case, plan.targets, options, record, ledger)
    every_output = {kind: str(output_dir / entry["file"]) for kind, entry in ledger.outputs.items()}
    ledger.finish({**{k: v for k, v in result.items() if k not in ("status", "error")}, "outputs": every_output})
    return result


def _record_suffices(recorded: dict[str, Any] | None, options: InferenceOptions) -> bool:
    """Whether a finished case's record holds what this run's summary gives (its uncertainty, when asked)."""
    wanted = options.uncertainty or options.review_threshold is not None
    return recorded is not None and (not wanted or "border_entropy" in recorded)


def _reused(ledger: CaseLedger, record: dict[str, Any], options: InferenceOptions) -> dict[str, Any]:
    """The record of a case whose outputs are kept: what the run that made them measured, marked ``skipped``."""
    kept = {**ledger.record, **{key: record[key] for key in ("case", "input", "kind")}}
    if options.review_threshold is not None:
        kept["review"] = kept["border_entropy"] > options.review_threshold
    files = ", ".join(kept["outputs"].values())
    reason = f"outputs exist, made from this input by this model with these settings ({files}); --overwrite redoes them"
    return {**kept, "status": "skipped", "error": reason}


def _segment(
    predictor: Predictor,
    case: Case,
    targets: dict[str, Path],
    options: InferenceOptions,
    record: dict[str, Any],
    ledger: CaseLedger,
) -> dict[str, Any]:
    """Segment the case and write ``targets``, each entered in the case's ledger; its record."""
    with _series_folder(case) as source:
        item, geometry, dicom_sources, notes = _read(predictor, case, source)
    if notes:
        record.setdefault("warnings", []).extend(notes)
    slices = item["image"].shape[-1] if predictor.volumetric else 1
    labels = predictor.settings.labels
    # a volume's probabilities in the axis order of its file (the pipeline puts the axial axis last): its own grid
    probabilities = stored_orientation(predictor.predict(item, progress=slices >= LONG_VOLUME)).numpy()
    if len(labels) > 1:  # the probability of each class, background first; the mask: the label map
        mask = options.postprocessing.label_map(probabilities)
    else:
        probabilities = probabilities[0]
        mask = options.postprocessing(probabilities)
    outputs = record["outputs"]

    def write(kind: str, writer: Callable[..., Path], content: Any, reference: Any, **options: Any) -> None:
        """``writer(content, reference, path, **options)`` to the target of ``kind``, entered in the ledger."""
        ledger.writing(kind, targets[kind])
        outputs[kind] = str(writer(content, reference, targets[kind], **options))
        ledger.written(kind, targets[kind])

    if "mask" in targets:
        write("mask", write_image, mask, geometry)
    if "probabilities" in targets:
        write("probabilities", write_image, probabilities.astype(np.float32), geometry, components=len(labels) > 1)
    if options.uncertainty or options.review_threshold is not None:
        band = _band_pixels(mask.shape, predictor.settings.spatial_size, predictor.volumetric)
        entropy = _add_uncertainty(record, probabilities, mask, geometry, band, options.review_threshold)
        if "entropy" in targets:
            write("entropy", write_image, entropy, geometry)
    failure = None
    for kind, values in (("dicom_seg", mask), ("dicom_seg_probabilities", probabilities)):
        if kind in targets:  # a SEG its sources cannot make fails alone: the case's other outputs are kept
            fractional = kind == "dicom_seg_probabilities"
            try:
                write(kind, write_dicom_seg, values, dicom_sources, labels=labels, fractional=fractional)
            except DicomSegError as error:
                failure = str(error)
    if "rtstruct" in targets:
        try:
            write("rtstruct", write_rtstruct, mask, dicom_sources, labels=labels)
        except DicomSegError as error:
            failure = str(error)
    if "overlay" in targets:
        native = stored_orientation(item["image"]) if predictor.volumetric else predictor.native_image(case.path)
        write("overlay", write_overlay, np.asarray(native), mask, title=case.name, labels=labels)
    record.update(_measures(mask, geometry, labels))
    record["threshold"] = options.postprocessing.level(probabilities) if len(labels) == 1 else None
    return {**record, "status": "partial" if failure else "ok", "error": failure}


def _measures(mask: np.ndarray, geometry: Geometry, labels: tuple[str, ...]) -> dict[str, Any]:
    """The foreground's size in voxels (pixels) and mL (mm²; only where the input's spacing is physical, not for a
    PNG or JPEG: its pixel count alone); with several labels, each label's too."""
    count, unit, scale = _units(mask.ndim == 3, geometry)
    foreground = int(np.count_nonzero(mask))
    measures: dict[str, Any] = {f"foreground_{count}": foreground}
    if unit != count:
        measures[f"foreground_{unit}"] = foreground * scale
    if len(labels) > 1:
        sizes = {name: int((mask == value).sum()) for value, name in enumerate(labels, start=1)}
        measures["labels"] = {
            name: {count: size, **({unit: size * scale} if unit != count else {})} for name, size in sizes.items()
        }
    return measures


def _units(volume: bool, geometry: Geometry) -> tuple[str, str, float]:
    """The count's name, the measure's unit and one voxel's size in it: ``voxels``, ``ml``; ``pixels``, ``mm2``; or
    ``pixels``, ``pixels``, 1 for an image without a physical spacing."""
    if volume:
        return "voxels", "ml", geometry.voxel_volume / 1000.0
    if not geometry.physical:
        return "pixels", "pixels", 1.0
    return "pixels", "mm2", float(np.prod(geometry.spacing[:2]))


def _band_pixels(shape: tuple[int, ...], spatial_size: tuple[int, ...], volumetric: bool) -> int:
    """The border band's half-width on the input's grid: :data:`BAND` pixels of the grid the network saw (a 2D
    image resized to ``spatial_size`` and back has a border blurred over as many more of its own pixels)."""
    if volumetric:  # slices are seen at their own size
        return BAND
    return max(1, round(BAND * max(shape[:2]) / max(spatial_size)))


def _add_uncertainty(
    record: dict[str, Any],
    probabilities: np.ndarray,
    mask: np.ndarray,
    geometry: Geometry,
    band: int,
    review_threshold: float | None,
) -> np.ndarray:
    """The case's uncertainty in its record; its entropy map."""
    _, unit, unit_size = _units(mask.ndim == 3, geometry)
    summary, entropy = uncertainty_summary(probabilities, np.asarray(mask, dtype=bool), unit_size, band)
    record.update(summary.as_record(unit), border_band_pixels=band)
    if review_threshold is not None:
        record["review"] = summary.border_entropy > review_threshold
    return entropy


def _run_case(
    predictor: Predictor, case: Case, output_dir: Path, options: InferenceOptions, run: RunIdentity
) -> dict[str, Any]:
    """The case's record, with the seconds it took; a case that fails is recorded, its reason naming the file."""
    start = time.perf_counter()
    try:
        record = _process(predictor, case, output_dir, options, run)
    except Exception as error:  # one bad input never stops the batch: it is recorded with its reason
        reason = _root_cause(error)
        named = reason if str(case.path) in reason or case.path.name in reason else f"{case.path}: {reason}"
        record = {"case": case.name, "input": str(case.path), "kind": case.kind, "status": "failed", "error": named}
    return {**record, "seconds": round(time.perf_counter() - start, 3)}


class _SummaryFile:
    """``summary.json``, rewritten atomically as cases finish, at most every ``interval`` seconds, and at the end.

    Rewriting it after every case would cost time growing with the cases done (quadratic over a batch).
    """

    def __init__(self, path: Path, summary: dict[str, Any], interval: float = SUMMARY_INTERVAL) -> None:
        self.path, self.summary, self.interval, self._written = path, summary, interval, -float("inf")

    def add(self, record: dict[str, Any]) -> None:
        self.summary["cases"].append(record)
        if time.monotonic() - self._written >= self.interval:
            with contextlib.suppress(OSError):  # a full disk: the cases go on, the summary is tried again
                self.write()

    def write(self) -> None:
        write_json(self.path, self.summary)
        self._written = time.monotonic()


def run_inference(
    predictor: Predictor,
    cases: list[Case],
    output_dir: str | Path,
    options: InferenceOptions | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Segment ``cases`` into ``output_dir``; return the summary (also written as ``summary.json``).

    Raises:
        OutputLockedError: when another run is writing into ``output_dir`` (nothing is written then).
        OSError: when ``summary.json`` cannot be written at the end (a full disk); every case's outputs are complete.

    The summary records the model's settings, the runtime of its forward pass (``pytorch`` or ``onnxruntime``)
    and the post-processing, and lists, per case: the input, its kind, the outputs, ``status`` (:data:`STATUSES`),
    the error (naming the file), the foreground volume in mL (3D) or area in pixels and, where the input's spacing is
    physical (not a PNG or JPEG), mm² (2D), the threshold
    applied and the seconds taken; with ``uncertainty`` or ``review_threshold``, the border band's mean entropy,
    the whole image's, the volume interval and (with a threshold) whether the case needs ``review``.
    """
    options = options or InferenceOptions()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "settings": predictor.settings.to_dict(),
        "runtime": predictor.runtime,
        "postprocessing": asdict(options.postprocessing),
        "cases": [],
    }
    summary_file = _SummaryFile(output_dir / "summary.json", summary)
    run = RunIdentity(predictor, options)
    task = get_task(predictor.settings.task)
    with output_lock(output_dir):
        try:
            for case in tqdm(cases, desc=f"medseg infer ({task.name})", unit="case", disable=not progress):
                summary_file.add(_run_case(predictor, case, output_dir, options, run))
        finally:  # also when stopped (Ctrl-C, SIGTERM): the summary of the cases done
            summary["counts"] = {
                status: sum(record["status"] == status for record in summary["cases"]) for status in STATUSES
            }
            if options.review_threshold is not None:
                summary["review_threshold"] = options.review_threshold
                summary["counts"]["review"] = sum(bool(record.get("review")) for record in summary["cases"])
            summary_file.write()
    return summary
