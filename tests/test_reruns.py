"""A rerun reuses what is there only when it would make the same thing (issue 32, class 1).

Each test is a rerun a user makes. ``medseg infer`` on real radiographs of the two shared hospitals (different
patients, different sizes): another patient under the same file name, another model, other settings, a file of the
user's own, an output changed since medseg wrote it, the same command again. The reference for what must be on
disk is the input itself (the mask's size is the input's), a fresh run into an empty folder, and the file's bytes
before the rerun. ``medseg compare-losses`` resumed with another budget, size or datalist, or over a run folder of
unknown settings.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from support import REPO_ROOT
from support.tiny_models import train_tiny_model

from medseg.apps.compare import Comparison
from medseg.apps.compare.execution import IDENTITY_FILE, check_resumable
from medseg.cli import main
from medseg.files import write_json
from medseg.tasks import prepare_datalist

BUNDLE = REPO_ROOT / "bundles" / "cxr_lung_unet"


def infer(*argv: str) -> int:
    try:
        return main(["infer", *argv])
    except SystemExit as exit:
        return exit.code


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def records(out: Path) -> dict[str, dict]:
    return {record["case"]: record for record in json.loads((out / "summary.json").read_text())["cases"]}


@pytest.fixture(scope="module")
def patients(shared_data, tmp_path_factory) -> dict[str, Path]:
    """Two patients' radiographs stored as ``img.jpg`` in two batch folders: OpenIST (500 px wide, under 450
    tall) and Shenzhen (512×512)."""
    first = sorted((shared_data / "cxr_openist").glob("*.jpg"))[0]
    second = sorted((shared_data / "cxr_shenzhen" / "images").glob("*.jpg"))[0]
    root = tmp_path_factory.mktemp("batches")
    paths = {}
    for batch, source in (("batch1", first), ("batch2", second)):
        (root / batch).mkdir()
        paths[batch] = shutil.copy(source, root / batch / "img.jpg")
    assert Image.open(paths["batch1"]).size != Image.open(paths["batch2"]).size
    return {name: Path(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def checkpoints(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny lung models trained for seconds on OpenIST radiographs (other seeds: other masks)."""
    root = tmp_path_factory.mktemp("models")
    images = sorted((shared_data / "cxr_openist").glob("*.jpg"))[10:22]
    pairs = [(image, image.with_name(f"{image.stem}@.png")) for image in images]
    return tuple(train_tiny_model(root / name, "cxr", pairs, size=32, steps=60, seed=seed)
                 for name, seed in (("a", 0), ("b", 1)))  # fmt: skip


def mask_size(path: Path) -> tuple[int, ...]:
    return sitk.ReadImage(str(path)).GetSize()[:2]


def test_another_patient_under_the_same_name_is_refused_not_taken_for_done(patients, checkpoints, tmp_path):
    out = tmp_path / "out"
    first, second = patients["batch1"], patients["batch2"]
    assert infer("--checkpoint", str(checkpoints[0]), "--input", str(first), "--output", str(out)) == 0
    written = sha256(out / "img_seg.nii.gz")
    assert mask_size(out / "img_seg.nii.gz") == Image.open(first).size
    assert infer("--checkpoint", str(checkpoints[0]), "--input", str(second), "--output", str(out)) == 1
    record = records(out)["img"]
    assert record["status"] == "failed" and record["input"] == str(second)
    assert "img_seg.nii.gz: made from another input" in record["error"] and str(first) in record["error"]
    assert "--overwrite" in record["error"]
    assert sha256(out / "img_seg.nii.gz") == written  # the first patient's mask is kept, not claimed as the second's
    assert infer("--checkpoint", str(checkpoints[0]), "--input", str(second), "--output", str(out), "--overwrite") == 0
    assert mask_size(out / "img_seg.nii.gz") == Image.open(second).size
    assert records(out)["img"]["status"] == "ok"


def test_the_same_input_model_and_settings_reuse_the_outputs_with_their_record(patients, checkpoints, tmp_path):
    out = tmp_path / "out"
    arguments = ["--checkpoint", str(checkpoints[0]), "--input", str(patients["batch1"]), "--output", str(out)]
    assert infer(*arguments, "--overlay") == 0
    first = records(out)["img"]
    files = {path.name: sha256(path) for path in out.glob("img_*")}
    copy = tmp_path / "elsewhere" / "img.jpg"  # the same content under another folder: the same input
    copy.parent.mkdir()
    shutil.copy(patients["batch1"], copy)
    assert infer("--checkpoint", str(checkpoints[0]), "--input", str(copy), "--output", str(out), "--overlay") == 0
    again = records(out)["img"]
    assert again["status"] == "skipped" and "made from this input by this model" in again["error"]
    assert again["foreground_pixels"] == first["foreground_pixels"] and again["outputs"] == first["outputs"]
    assert {path.name: sha256(path) for path in out.glob("img_*")} == files
    assert infer(*arguments, "--probabilities") == 0  # more asked of the same case: only the new file is made
    assert records(out)["img"]["outputs"] == {"probabilities": str(out / "img_prob.nii.gz")}
    assert {path.name: sha256(path) for path in out.glob("img_*") if "prob" not in path.name} == files


@pytest.mark.parametrize(
    "change, said",
    [
        (["--threshold", "0.9", "--keep-largest", "0"], "with other settings (keep_largest 2 -> null, threshold 0.5"),
        (["--test-time-shift", "2"], "with other settings (test_time_shift 0 -> 2)"),
        ("other model", "by another model (weights_sha256"),
    ],
)
def test_another_model_or_other_settings_are_refused_then_redone_whole(patients, checkpoints, tmp_path, change, said):
    """The rerun may not keep masks of another model or threshold beside a summary that claims the new one; with
    ``--overwrite`` every output of the case is redone, and those this run does not make are removed (an overlay
    drawn from the old mask must not stay beside the new mask)."""
    out = tmp_path / "out"
    image = str(patients["batch2"])
    base = ["--input", image, "--output", str(out), "--keep-largest", "2"]
    assert infer("--checkpoint", str(checkpoints[0]), *base, "--overlay", "--probabilities") == 0
    before = {path.name: sha256(path) for path in out.glob("img_*")}
    again = ["--checkpoint", str(checkpoints[1])] if change == "other model" else ["--checkpoint", str(checkpoints[0])]
    again += ["--input", image, "--output", str(out)]
    again += ["--keep-largest", "2", *([] if change == "other model" else change)]
    assert infer(*again, "--overlay") == 1
    record = records(out)["img"]
    assert record["status"] == "failed" and said in record["error"], record["error"]
    assert {path.name: sha256(path) for path in out.glob("img_*")} == before
    assert infer(*again, "--overlay", "--overwrite") == 0
    assert sorted(path.name for path in out.glob("img_*")) == ["img_overlay.png", "img_seg.nii.gz"]
    fresh = tmp_path / "fresh"  # the reference: the same command into an empty folder
    assert infer(*[str(fresh) if arg == str(out) else arg for arg in again], "--overlay") == 0
    for name in ("img_seg.nii.gz", "img_overlay.png"):
        assert sha256(out / name) == sha256(fresh / name)
    assert sha256(out / "img_seg.nii.gz") != before["img_seg.nii.gz"]
    assert infer(*again, "--overlay") == 0 and records(out)["img"]["status"] == "skipped"


def test_a_file_medseg_did_not_write_is_never_deleted_or_replaced(patients, checkpoints, tmp_path):
    """A user's own probability map, NaN rows and all, is the user's: refused without --overwrite, byte for byte."""
    out = tmp_path / "out"
    out.mkdir()
    users = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    users[5:7] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(users), str(out / "img_prob.nii.gz"))
    kept = sha256(out / "img_prob.nii.gz")
    arguments = ["--checkpoint", str(checkpoints[0]), "--input", str(patients["batch1"]), "--output", str(out)]
    assert infer(*arguments, "--probabilities") == 1
    record = records(out)["img"]
    assert "img_prob.nii.gz: exists and was not written by medseg" in record["error"]
    assert sha256(out / "img_prob.nii.gz") == kept and not (out / "img_seg.nii.gz").exists()
    assert infer(*arguments) == 0  # the mask alone does not touch the user's file
    assert sha256(out / "img_prob.nii.gz") == kept


def test_an_output_changed_since_medseg_wrote_it_is_refused(patients, checkpoints, tmp_path):
    out = tmp_path / "out"
    arguments = ["--checkpoint", str(checkpoints[0]), "--input", str(patients["batch1"]), "--output", str(out)]
    assert infer(*arguments) == 0
    edited = sitk.ReadImage(str(out / "img_seg.nii.gz"))
    sitk.WriteImage(edited * 0 + 1, str(out / "img_seg.nii.gz"))  # a clinician's correction, say
    changed = sha256(out / "img_seg.nii.gz")
    assert infer(*arguments) == 1
    assert "or was changed since medseg wrote it" in records(out)["img"]["error"]
    assert sha256(out / "img_seg.nii.gz") == changed


def _comparison(bundle: Path, datalist: Path, out: Path, **budget) -> Comparison:
    return Comparison(bundle=bundle, datalist=datalist, losses=["bce", "iou"], out=out, folds=2, **budget)


@pytest.fixture
def datalist(synthetic, tmp_path) -> Path:
    path = tmp_path / "datalist.json"
    prepare_datalist("cxr", synthetic("cxr", n=8), path, n_folds=2)
    return path


def compare(datalist: Path, out: Path, *flags: str) -> int:
    try:
        return main(["compare-losses", "--bundle", str(BUNDLE), "--datalist", str(datalist), "--losses", "bce,iou",
                     "--folds", "2", "--out", str(out), *flags])  # fmt: skip
    except SystemExit as exit:
        return exit.code


@pytest.mark.parametrize("state", ["finished", "begun"])
def test_a_comparison_is_not_resumed_with_another_budget_or_size(datalist, tmp_path, capsys, state):
    """Runs finished (or begun: a last state, no record) at 1 epoch and 32 px are neither reused nor continued by
    a comparison that asks 2 epochs at 48 px: it stops before any run, naming the folder and both values."""
    out = tmp_path / "comparison"
    earlier = _comparison(BUNDLE, datalist, out, epochs=1, overrides={"spatial_size": [32, 32]})
    run = earlier.runs()[0]
    folder = run.folder(out)
    folder.mkdir(parents=True)
    write_json(folder / IDENTITY_FILE, earlier.identity(run))  # what execute_run writes before it trains
    (folder / ("record.json" if state == "finished" else "last_state.pt")).write_text("{}")
    before = sorted(path.name for path in folder.iterdir())
    assert compare(datalist, out, "--epochs", "2", "--spatial-size", "48", "48") == 2
    error = capsys.readouterr().err
    assert f"{folder}: run with epochs 1 (now 2), spatial_size [32, 32] (now [48, 48])" in error
    assert sorted(path.name for path in folder.iterdir()) == before and not (out / "results.csv").exists()
    same = _comparison(BUNDLE, datalist, out, epochs=1, overrides={"spatial_size": [32, 32]})
    check_resumable(same, same.runs())  # the same settings resume


def test_a_comparison_is_not_resumed_on_another_datalist_or_an_unrecorded_run(datalist, tmp_path, capsys):
    out = tmp_path / "comparison"
    comparison = _comparison(BUNDLE, datalist, out, epochs=1)
    run = comparison.runs()[1]
    run.folder(out).mkdir(parents=True)
    write_json(run.folder(out) / IDENTITY_FILE, comparison.identity(run))
    entries = json.loads(datalist.read_text())
    dropped = entries["training"].pop()["case"]  # one case less, in its folds too: a valid datalist, other content
    for fold in entries.get("folds", []):
        for subset in ("train", "validation", "test"):
            fold[subset] = [case for case in fold.get(subset, []) if case != dropped]
    changed = tmp_path / "changed.json"  # the same path, other cases: a changed datalist
    changed.write_text(json.dumps(entries))
    changed.replace(datalist)
    assert compare(datalist, out, "--epochs", "1") == 2
    assert "run with other datalist content;" in capsys.readouterr().err
    shutil.rmtree(out)
    unrecorded = run.folder(out)
    unrecorded.mkdir(parents=True)
    (unrecorded / "last_state.pt").write_text("{}")  # a run of unknown settings
    assert compare(datalist, out, "--epochs", "1") == 2
    assert f"{unrecorded}: a run without a readable record of its settings (run.json)" in capsys.readouterr().err
