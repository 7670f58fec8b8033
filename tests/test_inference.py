"""``medseg infer``: real scans in, masks on the input's grid out, compressed DICOM decoded, nothing lost."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless
from scipy import ndimage
from support import REPO_ROOT, sitk_reference

from medseg.cli import main
from medseg.inference import find_cases
from medseg.inference.provenance import LEDGER_FOLDER
from medseg.pipeline import ModelSettings, build_network
from medseg.transforms import CleanMaskd, MaskPostprocessing, fill_holes, keep_largest_components

TINY = {"unet2d": {"features": [4, 8, 16]}}


def make_checkpoint(folder: Path, task: str, size: int = 32, seed: int = 0) -> Path:
    """An untrained U-Net checkpoint with the settings.json training writes beside it (geometry tests need no
    trained weights: every input gets the same deterministic network)."""
    torch.manual_seed(seed)
    settings = ModelSettings(task=task, network_name="unet2d", network_kwargs=TINY["unet2d"],
                             spatial_size=(size, size))  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(build_network(settings).state_dict(), folder / "model.pt")
    settings.save(folder)
    return folder / "model.pt"


def infer(*argv: str) -> int:
    try:
        return main(["infer", *argv])
    except SystemExit as exit:
        return exit.code


def outputs(out: Path) -> list[str]:
    """The files of an output folder, but the ledger folder (:mod:`medseg.inference.provenance`)."""
    return sorted(p.name for p in out.iterdir() if p.name != LEDGER_FOLDER)


def temporaries(out: Path) -> list[str]:
    """The hidden temporary files left in an output folder or its ledger folder."""
    ledger = out / LEDGER_FOLDER
    found = [p for folder in (out, ledger) if folder.is_dir() for p in folder.iterdir() if p.name.startswith(".")]
    return sorted(p.name for p in found if p != ledger)


def assert_same_grid(written: sitk.Image, reference: sitk.Image) -> None:
    assert written.GetSize() == reference.GetSize()
    np.testing.assert_allclose(written.GetSpacing(), reference.GetSpacing(), rtol=1e-5)
    np.testing.assert_allclose(written.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(written.GetDirection(), reference.GetDirection(), atol=1e-6)


@pytest.fixture(scope="module")
def ct_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ct-model"), "ct")


def test_dicom_series_and_nrrd_give_the_same_mask_on_the_inputs_grid(real_data, ct_checkpoint, tmp_path):
    ct = real_data("ct_cip")
    series, volume = ct / "ct-64Dicom", ct / "ct-64.nrrd"
    out = tmp_path / "out"
    assert infer("--checkpoint", str(ct_checkpoint), "--input", str(series), str(volume),
                 "--output", str(out), "--probabilities", "--overlay", "--dicom-seg") == 0  # fmt: skip
    from_dicom = sitk.ReadImage(str(out / "ct-64Dicom_seg.nii.gz"))
    from_nrrd = sitk.ReadImage(str(out / "ct-64_seg.nii.gz"))
    assert_same_grid(from_dicom, sitk_reference(series))
    assert_same_grid(from_nrrd, sitk_reference(volume))
    masks = [sitk.GetArrayFromImage(image) for image in (from_dicom, from_nrrd)]
    assert masks[0].dtype == np.uint8 and masks[0].any()
    np.testing.assert_array_equal(masks[0], masks[1])
    summary = json.loads((out / "summary.json").read_text())
    record = summary["cases"][0]
    assert record["status"] == "ok" and record["kind"] == "dicom-series"
    spacing = sitk_reference(series).GetSpacing()
    assert record["foreground_ml"] == pytest.approx(masks[0].sum() * np.prod(spacing) / 1000, rel=1e-6)
    assert (out / "ct-64Dicom_overlay.png").stat().st_size > 1000
    probabilities = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ct-64_prob.nii.gz")))
    np.testing.assert_array_equal(masks[1], (probabilities > 0.5).astype(np.uint8))
    # the DICOM SEG opens with highdicom and references the source series
    segmentation = hd.seg.segread(out / "ct-64Dicom_seg.dcm")
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(series.glob("*.dcm"))]
    assert segmentation.StudyInstanceUID == sources[0].StudyInstanceUID
    assert segmentation.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    referenced = {uid for _, _, uid in segmentation.get_source_image_uids()}
    assert referenced == {ds.SOPInstanceUID for ds in sources}
    assert "no DICOM SEG" in json.dumps(summary["cases"][1])  # the NRRD has no DICOM sources
    # the probabilities as a fractional SEG (PROBABILITY, 255 steps), read back by highdicom: the same values, and
    # its frames above 0.5 the binary SEG's, source image by source image
    fractional = hd.seg.segread(out / "ct-64Dicom_prob_seg.dcm")
    assert (fractional.SegmentationType, fractional.SegmentationFractionalType) == ("FRACTIONAL", "PROBABILITY")
    uids = [ds.SOPInstanceUID for ds in sources]
    binary_frames = segmentation.get_pixels_by_source_instance(uids, combine_segments=True)
    fractional_frames = fractional.get_pixels_by_source_instance(uids, combine_segments=False, rescale_fractional=False)
    values = fractional_frames[..., 0].astype(np.float64) / float(fractional.MaximumFractionalValue)
    from_dicom_probabilities = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ct-64Dicom_prob.nii.gz")))
    np.testing.assert_allclose(
        np.sort(values.ravel()), np.sort(from_dicom_probabilities.ravel()), atol=0.5 / 255 + 1e-6
    )
    assert np.mean((values > 0.5) != (binary_frames > 0)) < 1e-3  # only values within half a step of 0.5 differ


def _compressed(source: pydicom.Dataset, syntax) -> pydicom.Dataset:
    ds = source.copy()
    if syntax == JPEGBaseline8Bit:  # pydicom has no JPEG encoder: Pillow's, encapsulated
        pixels = source.pixel_array.astype(np.float64)
        eight = np.round(255 * (pixels - pixels.min()) / np.ptp(pixels)).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(eight).save(buffer, "JPEG", quality=95)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds["PixelData"].VR = "OB"
    else:
        ds.compress(syntax)
    return ds


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless, JPEGBaseline8Bit])
@pytest.mark.parametrize("task", ["ct", "cxr"])
def test_compressed_dicom_decodes_like_the_original(syntax, task, tmp_path):
    """CT_small.dcm through the CT (ITK/GDCM) and chest X-ray (pydicom + pylibjpeg) paths: a lossless syntax gives
    the original's probabilities exactly; lossy JPEG a close mask."""
    checkpoint = make_checkpoint(tmp_path / "model", task)
    original = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    original.save_as(inputs / "original.dcm")
    _compressed(original, syntax).save_as(inputs / "compressed.dcm")
    assert infer("--checkpoint", str(checkpoint), "--input", str(inputs / "original.dcm"),
                 str(inputs / "compressed.dcm"), "--output", str(tmp_path / "out"), "--probabilities") == 0  # fmt: skip
    maps = [
        sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / f"{n}_prob.nii.gz")))
        for n in ("original", "compressed")
    ]
    assert_same_grid(
        sitk.ReadImage(str(tmp_path / "out" / "compressed_seg.nii.gz")), sitk.ReadImage(str(inputs / "original.dcm"))
    )
    if syntax == JPEGBaseline8Bit:
        assert np.abs(maps[0] - maps[1]).mean() < 0.05
    else:
        np.testing.assert_allclose(maps[1], maps[0], atol=1e-6)


def test_chest_xray_png_end_to_end(real_data, tmp_path):
    image = sorted(real_data("cxr_openist").glob("*.jpg"))[0]
    checkpoint = make_checkpoint(tmp_path / "model", "cxr")
    out = tmp_path / "out"
    assert infer("--checkpoint", str(checkpoint), "--input", str(image), "--output", str(out),
                 "--overlay", "--threshold", "otsu", "--keep-largest", "2", "--fill-holes", "true") == 0  # fmt: skip
    written = sitk.ReadImage(str(out / f"{image.stem}_seg.nii.gz"))
    assert_same_grid(written, sitk.ReadImage(str(image)))
    record = json.loads((out / "summary.json").read_text())["cases"][0]
    assert record["foreground_pixels"] == int(sitk.GetArrayFromImage(written).sum())
    assert "foreground_mm2" not in record  # a JPEG's pixels have no physical size


@pytest.mark.filterwarnings("ignore:PydicomReader. ImageOrientationPatient")  # radiographs have no orientation
def test_a_folder_of_dicom_radiographs_is_one_case_per_file(synthetic, tmp_path):
    """A 2D bundle takes each DICOM file of a folder (with or without ``.dcm``) as a case, as it takes PNGs;
    for a volume task the same folder is one series."""
    folder = tmp_path / "xrays"
    shutil.copytree(synthetic("cxr", n=3, layout="dicom") / "images", folder)
    (folder / "CXR_0002.dcm").rename(folder / "CXR_0002")  # PACS exports often have no extension
    assert [(case.name, case.kind) for case in find_cases([folder], volumetric=False)] == [
        ("CXR_0000", "dicom-file"),
        ("CXR_0001", "dicom-file"),
        ("CXR_0002", "dicom-file"),
    ]
    [series] = find_cases([folder])
    assert series.kind == "dicom-series" and series.name == "xrays"
    checkpoint = make_checkpoint(tmp_path / "model", "cxr")
    out = tmp_path / "out"
    assert infer("--checkpoint", str(checkpoint), "--input", str(folder), "--output", str(out)) == 0
    for source in sorted(folder.iterdir()):
        written = sitk.ReadImage(str(out / f"{source.name.removesuffix('.dcm')}_seg.nii.gz"))
        assert_same_grid(written, sitk.ReadImage(str(source)))


def test_a_case_failing_in_the_forward_pass_or_while_written_leaves_the_others_in_order(tmp_path, monkeypatch):
    """A failure at any step (reading, the network, writing) is that case's alone, recorded with its file, and the
    summary keeps the input order."""
    from medseg.inference import Predictor, run_inference, runner

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for name in "abcdef":
        Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8)).save(inputs / f"{name}.png")
    (inputs / "c.png").write_bytes(b"not a png")  # fails while read
    Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8)).save(inputs / "g.jpg")
    (inputs / "g.jpg").write_bytes((inputs / "g.jpg").read_bytes()[:300])  # a JPEG cut short in its header
    checkpoint = make_checkpoint(tmp_path / "model", "cxr")
    predict, write_image = Predictor.predict, runner.write_image

    def failing_predict(self, item, progress=False):
        if Path(item["image"].meta["filename_or_obj"]).name == "b.png":
            raise RuntimeError("CUDA out of memory")
        return predict(self, item, progress)

    def failing_write(array, geometry, path):
        if path.name.startswith("e_"):
            raise OSError("No space left on device")
        return write_image(array, geometry, path)

    monkeypatch.setattr(Predictor, "predict", failing_predict)
    monkeypatch.setattr(runner, "write_image", failing_write)
    predictor = Predictor(ModelSettings.read(checkpoint.parent), checkpoint)
    out = tmp_path / "out"
    summary = run_inference(predictor, find_cases([inputs]), out, progress=False)
    assert [record["case"] for record in summary["cases"]] == list("abcdefg")
    statuses = [record["status"] for record in summary["cases"]]
    assert statuses == ["ok", "failed", "failed", "ok", "failed", "ok", "failed"]
    errors = {record["case"]: record["error"] for record in summary["cases"]}
    assert errors["b"] == f"{inputs / 'b.png'}: CUDA out of memory"
    assert errors["c"].startswith(f"{inputs / 'c.png'}: not an image")  # medseg's diagnosis, not the reader's
    assert errors["g"].startswith(f"{inputs / 'g.jpg'}: truncated image header")
    assert errors["e"] == f"{inputs / 'e.png'}: No space left on device"
    assert summary["counts"] == {"ok": 3, "partial": 0, "failed": 4, "skipped": 0}
    assert json.loads((out / "summary.json").read_text()) == summary
    assert outputs(out) == ["a_seg.nii.gz", "d_seg.nii.gz", "f_seg.nii.gz", "summary.json"]


@pytest.fixture
def batch(real_data, tmp_path):
    """Two good inputs (the CT series and its NRRD) and three bad ones."""
    ct = real_data("ct_cip")
    inputs = tmp_path / "inputs"
    shutil.copytree(ct / "ct-64Dicom", inputs / "truncated")
    first = sorted((inputs / "truncated").iterdir())[40]
    first.write_bytes(first.read_bytes()[:3000])
    (inputs / "empty.nii.gz").write_bytes(b"")
    (inputs / "notes.nii.gz").write_text("these are my notes, not an image\n")
    shutil.copy(ct / "ct-64.nrrd", inputs / "good.nrrd")
    shutil.copytree(ct / "ct-64Dicom", inputs / "good_series")
    return inputs, first


def test_bad_inputs_are_reported_and_the_good_ones_written(batch, ct_checkpoint, tmp_path):
    inputs, truncated = batch
    out = tmp_path / "out"
    assert infer("--checkpoint", str(ct_checkpoint), "--input", str(inputs), "--output", str(out)) == 1
    records = {r["case"]: r for r in json.loads((out / "summary.json").read_text())["cases"]}
    assert records["good"]["status"] == records["good_series"]["status"] == "ok"
    assert truncated.name in records["truncated"]["error"] and records["truncated"]["status"] == "failed"
    assert "empty.nii.gz" in records["empty"]["error"] and "empty file" in records["empty"]["error"]
    assert "notes.nii.gz" in records["notes"]["error"] and records["notes"]["status"] == "failed"
    assert outputs(out) == ["good_seg.nii.gz", "good_series_seg.nii.gz", "summary.json"]
    # existing outputs are kept unless --overwrite
    assert infer("--checkpoint", str(ct_checkpoint), "--input", str(inputs / "good.nrrd"),
                 "--output", str(out)) == 0  # fmt: skip
    assert json.loads((out / "summary.json").read_text())["cases"][0]["status"] == "skipped"


def test_usage_errors_exit_2(ct_checkpoint, real_data, tmp_path, capsys):
    ct = real_data("ct_cip")
    checkpoint = [
        "--checkpoint",
        str(ct_checkpoint),
    ]
    assert infer(*checkpoint, "--input", str(ct / "ct-64.nrrd"), "--output", str(ct)) == 2
    assert "holds the input" in capsys.readouterr().err
    assert infer(*checkpoint, "--input", str(tmp_path / "missing.nii.gz"), "--output", str(tmp_path / "o")) == 2
    assert "no such file or folder" in capsys.readouterr().err
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO_ROOT / "bundles" / "luna16_segcaps" / "configs", bundle / "configs")
    assert infer("--model-dir", str(bundle), "--input", str(ct / "ct-64.nrrd"), "--output", str(tmp_path / "o")) == 2
    error = capsys.readouterr().err
    assert "no trained weights" in error and "train.json" in error
    # the model flags contradict the record (the checkpoint's own settings)
    contradicting = ["--checkpoint", str(ct_checkpoint), "--network-name", "unet", "--spatial-size", "64", "64"]
    assert infer(*contradicting, "--input", str(ct / "ct-64.nrrd"), "--output", str(tmp_path / "o")) == 2
    error = capsys.readouterr().err
    assert "argument --checkpoint" in error and "network_name 'unet' (trained with 'unet2d')" in error
    assert "spatial_size [64, 64] (trained with [32, 32])" in error
    # a checkpoint without its record needs the flags that describe it
    bare = tmp_path / "bare" / "model.pt"
    bare.parent.mkdir()
    shutil.copy(ct_checkpoint, bare)
    assert infer("--checkpoint", str(bare), "--input", str(ct / "ct-64.nrrd"), "--output", str(tmp_path / "o")) == 2
    assert "no settings recorded; give --task, --network-name, --spatial-size" in capsys.readouterr().err


def test_a_folder_of_several_series_takes_the_largest_or_the_one_asked(real_data, ct_checkpoint, tmp_path):
    series = real_data("ct_cip") / "ct-64Dicom"
    mixed = tmp_path / "mixed"
    shutil.copytree(series, mixed)
    other = pydicom.uid.generate_uid()
    for path in sorted(mixed.iterdir())[:5]:  # five files become a second series
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = other
        ds.save_as(mixed / f"other_{path.name}")
        path.unlink()
    [case] = find_cases([mixed])
    assert case.other_series == {other: 5} and len(case.files) == 74
    out = tmp_path / "out"
    assert infer("--checkpoint", str(ct_checkpoint), "--input", str(mixed), "--output", str(out),
                 "--series-uid", other) == 0  # fmt: skip
    assert sitk.ReadImage(str(out / "mixed_seg.nii.gz")).GetSize()[2] == 5


@pytest.mark.slow
def test_a_stopped_run_leaves_no_partial_file(real_data, ct_checkpoint, tmp_path):
    """Stopped while it writes: every output present is complete; SIGTERM leaves no temporary file, and the
    temporary files a SIGKILL can leave are hidden and removed by the next run. The two runs go at once, each
    stopped when it has written its second case."""
    volume = real_data("ct_cip") / "ct-64.nrrd"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for k in range(5):
        os.symlink(volume, inputs / f"case{k:02d}.nrrd")
    options = [
        "--checkpoint",
        str(ct_checkpoint),
        "--network-name",
        "unet2d",
        "--input",
        str(inputs),
        "--probabilities",
    ]
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores: one thread each
    outputs = {stop: tmp_path / f"out-{stop.name}" for stop in (signal.SIGTERM, signal.SIGKILL)}
    script, logs = [sys.executable, "-m", "medseg", "infer"], tmp_path / "logs"
    logs.mkdir()
    processes = {}
    for stop, out in outputs.items():
        with open(logs / stop.name, "w") as log:  # the progress bar would fill a pipe nobody reads yet
            processes[stop] = subprocess.Popen(
                [*script, *options, "--output", str(out)], stdout=log, stderr=log, env=one_thread
            )
    waiting, start = dict(processes), time.monotonic()
    while waiting:
        for stop, process in list(waiting.items()):
            if (outputs[stop] / "case01_seg.nii.gz").exists():
                process.send_signal(stop)
                del waiting[stop]
            else:
                assert process.poll() is None, (logs / stop.name).read_text()[-2000:]
        assert time.monotonic() - start < 240
        time.sleep(0.05)
    for stop, process in processes.items():
        process.wait(timeout=60)
        assert process.returncode == (128 + signal.SIGTERM if stop == signal.SIGTERM else -signal.SIGKILL)
        out = outputs[stop]
        visible = [p for p in out.iterdir() if not p.name.startswith(".")]
        for path in visible:
            if path.name.endswith(".nii.gz"):
                assert sitk.GetArrayFromImage(sitk.ReadImage(str(path))).shape == (79, 64, 64)
        json.loads((out / "summary.json").read_text())
        if stop == signal.SIGTERM:
            assert temporaries(out) == []
        done = sorted(p.name for p in visible)
        assert infer(*options, "--output", str(out)) == 0
        assert temporaries(out) == []
        assert len(list(out.glob("*_seg.nii.gz"))) == 5 and len(done) >= 2


def test_postprocessing_against_references():
    rng = np.random.default_rng(0)
    probabilities = ndimage.gaussian_filter(rng.random((40, 50)), 3)
    otsu = MaskPostprocessing("otsu")
    from skimage.filters import threshold_otsu

    np.testing.assert_array_equal(otsu(probabilities), probabilities > threshold_otsu(probabilities))
    blobs = np.zeros((30, 30), bool)
    blobs[2:12, 2:12] = True  # 100 pixels
    blobs[15:22, 15:22] = True  # 49 pixels
    blobs[25:28, 2:5] = True  # 9 pixels
    labels, _ = ndimage.label(blobs, structure=np.ones((3, 3)))
    np.testing.assert_array_equal(keep_largest_components(blobs, 2), np.isin(labels, [1, 2]))
    np.testing.assert_array_equal(keep_largest_components(blobs, 2, min_ratio=0.5), labels == 1)  # 49 < 50
    ring = np.zeros((9, 9), np.float32)
    ring[2:7, 2:7], ring[4, 4] = 0.9, 0.1
    filled = MaskPostprocessing(fill_holes=True)(ring)
    np.testing.assert_array_equal(filled, ndimage.binary_fill_holes(ring > 0.5).astype(np.uint8))
    assert filled[4, 4] == 1
    # border clearing, by hand: a frame of "outside air" touching the edge goes, the inner blob stays; in a volume
    # the blob touching the first and last slices stays (only the in-plane border counts)
    air = np.zeros((12, 12, 5), np.float32)
    air[:, :2] = air[4:8, 4:8] = 0.9
    cleared = MaskPostprocessing(clear_border=True)(air)
    expected = np.zeros(air.shape, np.uint8)
    expected[4:8, 4:8] = 1
    np.testing.assert_array_equal(cleared, expected)
    np.testing.assert_array_equal(MaskPostprocessing(clear_border=True)(air[..., 0]), expected[..., 0])


@pytest.mark.parametrize("shape", [(60, 50), (20, 24, 16)])
def test_fill_holes_matches_scipy(shape):
    """Random blobs with holes of every kind, some open to a side of the image, in 2D and 3D."""
    rng = np.random.default_rng(sum(shape))
    for fraction in (0.3, 0.5, 0.7):
        smooth = ndimage.gaussian_filter(rng.random(shape), 1.5)
        mask = smooth > np.quantile(smooth, 1 - fraction)  # blobs, rings and channels of a random topology
        mask ^= rng.random(shape) < 0.05  # pinholes and specks
        expected = ndimage.binary_fill_holes(mask)
        assert expected.sum() > mask.sum()  # there were holes to fill
        np.testing.assert_array_equal(fill_holes(mask), expected)


def test_clean_maskd_keeps_the_largest_components_fills_holes_and_keeps_the_metadata():
    """The bundles' cleaning of a binary ``pred`` (channel first), against masks drawn by hand."""
    lungs = np.zeros((2, 20, 24), np.float32)
    lungs[0, 2:18, 2:10] = lungs[0, 2:18, 13:21] = 1  # two "lungs" of 128 pixels
    lungs[0, 8, 5] = 0  # a hole in the first
    lungs[0, 0, 23] = 1  # a speck
    lungs[1, 5:9, 5:9] = lungs[1, 15:17, 15:17] = 1  # second channel: 16 and 4 pixels
    pred = MetaTensor(torch.from_numpy(lungs), affine=torch.diag(torch.tensor([0.5, 0.7, 1.0, 1.0])))
    cleaned = CleanMaskd("pred", keep_largest=2, fill_holes=True)({"pred": pred})["pred"]
    expected = np.zeros_like(lungs)
    expected[0, 2:18, 2:10] = expected[0, 2:18, 13:21] = 1
    expected[1, 5:9, 5:9] = expected[1, 15:17, 15:17] = 1
    np.testing.assert_array_equal(cleaned.numpy(), expected)
    assert isinstance(cleaned, MetaTensor) and torch.equal(cleaned.affine, pred.affine)
    assert cleaned.dtype == pred.dtype and pred[0, 0, 23] == 1  # the input is not changed
    expected[1, 15:17, 15:17] = 0
    expected[0, 2:18, 2:10] = 0  # the first lung has 127 pixels (its hole), the second 128
    only_largest = CleanMaskd("pred", keep_largest=1)({"pred": pred})["pred"]
    np.testing.assert_array_equal(only_largest.numpy(), expected)
