"""``medseg prepare`` on real and broken folders: counts, figures checked independently, bad pairs, atomic JSON."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from monai.data import load_decathlon_datalist
from PIL import Image

import medseg.files
from medseg.cli import main
from medseg.data import fold_datalists, montgomery_datalist
from medseg.tasks import prepare as prepare_module
from medseg.tasks import prepare_datalist


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["prepare", *argv])
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code
    return code, out.getvalue(), err.getvalue()


def _check_folds(payload: dict, n_folds: int) -> None:
    cases = {e["case"] for e in payload["training"]}
    folds = payload["folds"]
    assert len(folds) == n_folds
    assert sorted(c for f in folds for c in f["test"]) == sorted(cases)
    for fold in folds:
        assert set(fold["train"]) | set(fold["validation"]) | set(fold["test"]) == cases
        assert all(e["fold"] == fold["fold"] for e in payload["training"] if e["case"] in fold["test"])


# ------------------------------------------------------------------ real folders


@pytest.fixture(scope="module")
def cxr_openist(real_data, tmp_path_factory):
    root = real_data("cxr_openist")
    out = tmp_path_factory.mktemp("prepare") / "cxr.json"
    code, printed, _ = run(
        "--task", "cxr", "--data-root", str(root), "--out", str(out), "--mask-pattern", "{stem}@.png"
    )
    return root, out, code, printed


def test_cxr_openist_150_pairs(cxr_openist):
    _, out, code, printed = cxr_openist
    assert code == 0
    assert "pairs found          150" in printed and "bad pairs            0" in printed and f"wrote {out}" in printed
    payload = json.loads(out.read_text())
    assert payload["numTraining"] == 150 and payload["bad_pairs"] == []
    _check_folds(payload, 4)
    fold = fold_datalists(out, 0)
    assert len(fold["validation"]) == 12  # ceil(10 % of the 112 training cases)
    assert len(load_decathlon_datalist(str(out), data_list_key="training")) == 150  # MONAI reads it as is


def test_cxr_openist_figures_counted_independently(cxr_openist):
    root, out, _, printed = cxr_openist
    foreground = pixels = 0
    for mask_path in sorted(root.glob("*@.png")):
        mask = np.asarray(Image.open(mask_path)) > 127  # the README's binarisation
        foreground += int(mask.sum())
        pixels += mask.size
    summary = json.loads(out.read_text())["summary"]
    assert summary["foreground_fraction"] == pytest.approx(foreground / pixels, rel=1e-12)
    assert summary["pos_weight"] == pytest.approx((pixels - foreground) / foreground, rel=1e-12)  # every mask has lungs
    assert 0.15 < summary["foreground_fraction"] < 0.46
    assert f"foreground fraction  {foreground / pixels:.4f}" in printed


@pytest.fixture(scope="module")
def lfw_parts(real_data, tmp_path_factory):
    root = real_data("lfw_parts")
    out = tmp_path_factory.mktemp("prepare") / "lfw.json"
    code, printed, _ = run("--task", "lfw", "--data-root", str(root), "--out", str(out))
    return root, out, code, printed


def test_lfw_parts_600_training_150_validation(lfw_parts):
    root, out, code, printed = lfw_parts
    assert code == 0
    assert "valid pairs          750 (official splits: train 600, validation 150)" in printed
    payload = json.loads(out.read_text())
    assert payload["summary"]["splits"] == {"train": 600, "validation": 150}
    people = {p.name for p in (root / "lfw_funneled").iterdir() if p.is_dir()}
    assert payload["summary"]["groups"] == len(people)  # folds group the images of one person
    _check_folds(payload, 4)
    patient = {e["case"]: e["patient"] for e in payload["training"]}
    for fold in payload["folds"]:
        assert not {patient[c] for c in fold["test"]} & {patient[c] for c in fold["train"] + fold["validation"]}


def test_lfw_negative_positive_ratio_is_the_papers(lfw_parts):
    """The capsule IoU paper reports 2.15 for LFW (face = skin + hair) on the full set; this is a 750-image subset."""
    _, out, _, _ = lfw_parts
    with_hair = json.loads(out.read_text())["summary"]["pos_weight"]
    assert with_hair == pytest.approx(2.15, rel=0.05)


@pytest.mark.parametrize("image_pattern", ["ct-{id}.nrrd", "ct-{id}Dicom"])
def test_ct_cip_one_case_on_one_grid(real_data, tmp_path, image_pattern):
    root = real_data("ct_cip")
    out = tmp_path / "ct.json"
    code, printed, _ = run("--task", "ct", "--data-root", str(root), "--out", str(out), "--folds", "0",
                           "--image-pattern", image_pattern, "--mask-pattern", "wholeLung-{id}.nrrd")  # fmt: skip
    assert code == 0 and "valid pairs          1\n" in printed
    (entry,) = json.loads(out.read_text())["training"]
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "wholeLung-64.nrrd")))  # (z, y, x)
    assert entry["num_slices"] == 79
    assert entry["foreground_slices"] == np.flatnonzero(mask.any(axis=(1, 2))).tolist()
    assert f"slices               79 ({len(entry['foreground_slices'])} with foreground)" in printed


def test_ct_grid_mismatch_is_a_bad_pair(real_data, tmp_path):
    root = tmp_path / "cip"
    root.mkdir()
    shutil.copy(real_data("ct_cip") / "ct-64.nrrd", root)
    mask = sitk.ReadImage(str(real_data("ct_cip") / "wholeLung-64.nrrd"))
    mask.SetOrigin([v + 2.0 for v in mask.GetOrigin()])  # half a voxel off
    sitk.WriteImage(mask, str(root / "wholeLung-64.nrrd"))
    with pytest.raises(ValueError, match="grid mismatch"):
        prepare_datalist("ct", root, n_folds=0, image_pattern="ct-{id}.nrrd", mask_pattern="wholeLung-{id}.nrrd")


# ------------------------------------------------------------------ synthetic folders


def test_luna16_slices_and_ratio_counted_independently(synthetic, tmp_path):
    root = synthetic("luna16", n=2)
    report = prepare_datalist("luna16", root, tmp_path / "l.json", n_folds=0)
    negative = positive = slices = with_lungs = 0
    for scan in sorted((root / "seg-lungs-LUNA16").glob("*.mhd")):
        lungs = np.isin(sitk.GetArrayFromImage(sitk.ReadImage(str(scan))), (3, 4))
        slices += len(lungs)
        for plane in lungs:  # SegCaps' compute_class_weights: slices with foreground only
            if plane.any():
                with_lungs += 1
                positive += int(plane.sum())
                negative += plane.size - int(plane.sum())
    assert report.summary["slices"] == slices and report.summary["slices_with_foreground"] == with_lungs
    assert report.summary["pos_weight"] == pytest.approx(negative / positive, rel=1e-12)
    left_only = prepare_datalist("luna16", root, n_folds=0, foreground=(3,))
    assert left_only.summary["pos_weight"] > 1.8 * report.summary["pos_weight"]


@pytest.fixture()
def broken_folder(synthetic, tmp_path) -> Path:
    """Six chest X-rays in images/ + masks/, four of them broken in different ways."""
    root = tmp_path / "broken"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for entry in montgomery_datalist(synthetic("cxr", n=6)):
        name = Path(entry["image"]).name
        shutil.copy(entry["image"], root / "images" / name)
        left, right = (np.asarray(Image.open(p)) for p in entry["label"])
        Image.fromarray(np.maximum(left, right)).save(root / "masks" / name)
    (root / "images" / "MCUCXR_0000_0.png").write_bytes(b"not an image")
    Image.open(root / "masks" / "MCUCXR_0001_0.png").resize((50, 40)).save(root / "masks" / "MCUCXR_0001_0.png")
    empty = np.zeros_like(np.asarray(Image.open(root / "masks" / "MCUCXR_0002_0.png")))
    Image.fromarray(empty).save(root / "masks" / "MCUCXR_0002_0.png")
    (root / "masks" / "MCUCXR_0003_0.png").unlink()
    return root


def test_bad_pairs_are_listed_and_the_rest_written(broken_folder, tmp_path):
    out = tmp_path / "cxr.json"
    code, printed, _ = run("--task", "cxr", "--data-root", str(broken_folder), "--out", str(out), "--folds", "2")
    assert code == 0
    payload = json.loads(out.read_text())
    assert [e["case"] for e in payload["training"]] == ["MCUCXR_0004_0", "MCUCXR_0005_0"]
    reasons = {Path(b["image"]).stem: b["reason"] for b in payload["bad_pairs"]}
    assert reasons["MCUCXR_0000_0"].startswith("unreadable:") and "MCUCXR_0000_0.png" in reasons["MCUCXR_0000_0"]
    assert reasons["MCUCXR_0001_0"].startswith("size mismatch: image (") and reasons["MCUCXR_0001_0"].endswith(
        "vs mask (50, 40)"
    )
    assert reasons["MCUCXR_0002_0"] == "empty mask"
    assert reasons["MCUCXR_0003_0"] == "no mask matching 'masks/MCUCXR_0003_0.*'"
    assert "bad pairs (4), left out:" in printed
    for stem, reason in reasons.items():
        assert f"{stem}.png" in printed and reason.splitlines()[0] in printed


def test_nothing_valid_leaves_the_old_file_untouched(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"junk")
    (tmp_path / "masks" / "a.png").write_bytes(b"junk")
    out = tmp_path / "out" / "datalist.json"
    out.parent.mkdir()
    out.write_text('{"old": true}')
    code, _, err = run("--task", "cxr", "--data-root", str(tmp_path), "--out", str(out))
    assert code == 1 and "no valid cxr pair among 1 found" in err and "a.png" in err
    assert out.read_text() == '{"old": true}' and sorted(p.name for p in out.parent.iterdir()) == ["datalist.json"]


def test_a_failed_write_leaves_no_partial_file(synthetic, tmp_path, monkeypatch):
    out = tmp_path / "datalist.json"
    out.write_text('{"old": true}')
    written = []

    def failing_replace(source, target):
        written.append(Path(source).read_text())
        raise OSError("rename refused")

    monkeypatch.setattr(medseg.files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename refused"):
        prepare_datalist("cxr", synthetic("cxr", n=4), out, n_folds=0)
    assert json.loads(written[0])["numTraining"] == 4  # the complete JSON went to a temporary file first
    assert out.read_text() == '{"old": true}' and [p.name for p in tmp_path.iterdir()] == ["datalist.json"]


def test_an_error_mid_validation_writes_nothing_rather_than_a_short_datalist(synthetic, tmp_path, monkeypatch):
    """Only a pair's own read or decode failure makes it a bad pair; any other error stops the run."""
    calls = []

    def failing_after_one(label):
        calls.append(label)
        if len(calls) == 2:
            raise ValueError("something unrelated to the pairs")
        return [0]

    monkeypatch.setattr(prepare_module, "foreground_slices", failing_after_one)
    out = tmp_path / "luna16.json"
    with pytest.raises(ValueError, match="something unrelated"):
        prepare_datalist("luna16", synthetic("luna16", n=2), out, n_folds=0)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_slice_indices_stay_on_one_line(synthetic, tmp_path):
    out = tmp_path / "luna16.json"
    entries = prepare_datalist("luna16", synthetic("luna16", n=2), out, n_folds=0).datalist
    text = out.read_text()
    assert json.loads(text)["training"] == entries
    assert f'"foreground_slices": [{", ".join(map(str, entries[0]["foreground_slices"]))}]' in text


def test_options_that_do_not_apply_are_refused(tmp_path):
    code, _, err = run(
        "--task", "lfw", "--data-root", str(tmp_path), "--out", str(tmp_path / "x.json"), "--layout", "ph2"
    )
    assert code == 2 and "--layout do(es) not apply to --task lfw" in err
    code, _, err = run(
        "--task", "cxr", "--data-root", str(tmp_path), "--out", str(tmp_path / "x.json"), "--layout", "ph2"
    )
    assert code == 2 and "argument --layout: 'ph2' is not a --task cxr choice: auto, montgomery" in err
    code, _, err = run("--task", "lfw", "--data-root", str(tmp_path), "--out", str(tmp_path / "x.json"))
    assert code == 1 and f"{tmp_path}: not an LFW Part Labels layout" in err
    assert not (tmp_path / "x.json").exists()


def test_two_sources_and_a_held_out_source(real_data, tmp_path, capsys):
    """The two shared chest X-ray sources in one datalist: each case records its source, names stay unique and a
    patient group never spans two subsets; --test-source trains on one hospital and tests on the other."""
    openist, shenzhen = real_data("cxr_openist"), real_data("cxr_shenzhen")
    out = tmp_path / "both.json"
    assert main(["prepare", "--task", "cxr", "--data-root", str(openist), str(shenzhen), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    entries = data["training"]
    assert data["summary"]["sources"] == {"cxr_openist": 150, "cxr_shenzhen": 377}
    assert {entry["source"] for entry in entries} == {"cxr_openist", "cxr_shenzhen"}
    assert all(entry["case"].startswith(entry["source"] + "/") for entry in entries)
    assert len({entry["case"] for entry in entries}) == 527
    for fold in data["folds"]:  # a patient's cases in one subset only, every case tested once
        subsets = [set(fold[name]) for name in ("train", "validation", "test")]
        assert not (subsets[0] & subsets[1] or subsets[0] & subsets[2] or subsets[1] & subsets[2])
    assert sorted(c for fold in data["folds"] for c in fold["test"]) == sorted(e["case"] for e in entries)
    held = tmp_path / "to_openist.json"
    assert main(["prepare", "--task", "cxr", "--data-root", str(openist), str(shenzhen), "--test-source",
                 "cxr_openist", "--out", str(held)]) == 0  # fmt: skip
    [fold] = json.loads(held.read_text())["folds"]
    by_case = {entry["case"]: entry for entry in json.loads(held.read_text())["training"]}
    assert {by_case[c]["source"] for c in fold["test"]} == {"cxr_openist"} and len(fold["test"]) == 150
    assert {by_case[c]["source"] for c in fold["train"] + fold["validation"]} == {"cxr_shenzhen"}
    assert len(fold["train"]) + len(fold["validation"]) == 377 and len(fold["validation"]) == 38
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:  # a source that is not there: a usage error, nothing read
        main(["prepare", "--task", "cxr", "--data-root", str(openist), str(shenzhen), "--test-source", "montgomery",
              "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert exit.value.code == 2
    assert "argument --test-source: no data root is named 'montgomery'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
