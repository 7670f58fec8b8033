"""Bad input as a careful user meets it: each class a test, on real files (the shared CT and radiographs, mutated)
or synthetic ones in the real layouts; never a traceback, never a silently wrong output."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from medseg.cli import main
from medseg.dicom import DicomError, check_dicom_series
from medseg.inference import find_cases, unique_names
from medseg.pipeline import ModelSettings, build_network
from medseg.tasks import get_task, prepare_datalist, synthesize
from medseg.transforms import ImageFileError

TINY = {"features": [4, 8, 16]}


def infer(*argv: str) -> int:
    try:
        return main(["infer", *argv])
    except SystemExit as exit:
        return exit.code


def make_checkpoint(folder: Path, task: str) -> Path:
    """An untrained U-Net with its record (the tests need every input to get the same deterministic network)."""
    torch.manual_seed(0)
    settings = ModelSettings(task=task, network_name="unet2d", network_kwargs=TINY, spatial_size=(32, 32))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(build_network(settings).state_dict(), folder / "model.pt")
    settings.save(folder)
    return folder / "model.pt"


@pytest.fixture(scope="module")
def cxr_checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("cxr-model"), "cxr")


@pytest.fixture(scope="module")
def ct_checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ct-model"), "ct")


def _summary(out: Path) -> dict[str, dict]:
    return {record["case"]: record for record in json.loads((out / "summary.json").read_text())["cases"]}


@pytest.mark.filterwarnings("ignore:PydicomReader. ImageOrientationPatient")  # radiographs have no orientation
def test_dicom_seg_of_radiographs_without_type_2_attributes_and_a_seg_that_cannot_be_made(cxr_checkpoint, tmp_path):
    """A radiograph without PatientBirthDate (type 2: may be empty, often absent) gets its SEG with the attribute
    empty; one whose SOPClassUID is empty cannot be referenced: its SEG fails alone, naming the attribute, its mask
    is kept and the run says so (status ``partial``, exit 1)."""
    synthesize("cxr", tmp_path / "data", n=2, layout="dicom")
    images = sorted((tmp_path / "data" / "images").glob("*.dcm"))
    for path in images:
        ds = pydicom.dcmread(path)
        assert "PatientBirthDate" not in ds and "PatientSex" not in ds
    broken = pydicom.dcmread(images[1])
    broken.SOPClassUID = ""
    broken.save_as(images[1])
    out = tmp_path / "out"
    assert infer("--checkpoint", str(cxr_checkpoint), "--input", str(tmp_path / "data" / "images"),
                 "--output", str(out), "--dicom-seg") == 1  # fmt: skip
    records = _summary(out)
    first, second = (records[path.stem] for path in images)
    assert first["status"] == "ok" and Path(first["outputs"]["dicom_seg"]).is_file()
    seg = hd.seg.segread(first["outputs"]["dicom_seg"])
    source = pydicom.dcmread(images[0])
    assert seg.PatientBirthDate == "" and seg.PatientID == source.PatientID
    [(study, series, instance)] = seg.get_source_image_uids()
    assert (study, series, instance) == (source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID)
    np.testing.assert_array_equal(  # the SEG's frame is the mask, row for row
        seg.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=True)[0],
        sitk.GetArrayFromImage(sitk.ReadImage(first["outputs"]["mask"])).reshape(source.Rows, source.Columns),
    )
    assert second["status"] == "partial" and "SOPClassUID" in second["error"] and images[1].name in second["error"]
    assert set(second["outputs"]) == {"mask"} and Path(second["outputs"]["mask"]).is_file()
    assert json.loads((out / "summary.json").read_text())["counts"] == {
        "ok": 1,
        "partial": 1,
        "failed": 0,
        "skipped": 0,
    }


def _copy_series(real_data, folder: Path) -> list[Path]:
    shutil.copytree(real_data("ct_cip") / "ct-64Dicom", folder)
    return sorted(folder.glob("*.dcm"))


def test_a_palette_png_is_read_in_its_colours(real_data, cxr_checkpoint, tmp_path):
    """A radiograph saved as a palette PNG (mode P) gives the same input, and the same mask, as the grey JPEG; the
    palette indices were read as intensities before (Dice 0.72)."""
    from medseg.tasks import get_task

    jpeg = sorted(real_data("cxr_openist").glob("*.jpg"))[0]
    palette = tmp_path / "palette.png"
    Image.open(jpeg).convert("L").quantize(256).save(palette)
    assert Image.open(palette).mode == "P"
    load = get_task("cxr").image_transforms((256, 256))
    grey, indexed = (load({"image": str(path)})["image"] for path in (jpeg, palette))
    assert float((grey - indexed).abs().mean()) < 0.01  # quantised to 256 colours of a grey image: nearly equal
    out = tmp_path / "out"
    assert infer("--checkpoint", str(cxr_checkpoint), "--input", str(jpeg), str(palette), "--output", str(out)) == 0
    masks = [sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{name}_seg.nii.gz"))) for name in (jpeg.stem, "palette")]
    union = np.logical_or(*masks).sum()
    assert union == 0 or 2 * np.logical_and(*masks).sum() / (masks[0].sum() + masks[1].sum()) > 0.99


def test_output_names_are_unique_and_stable(cxr_checkpoint, real_data, tmp_path):
    jpeg = sorted(real_data("cxr_openist").glob("*.jpg"))[0]
    for name in ("c1/x.jpg", "c2/x.jpg", "c3/x_2.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(jpeg, tmp_path / name)
    out = tmp_path / "out"
    inputs = [str(tmp_path / name) for name in ("c1/x.jpg", "c2/x.jpg", "c3/x_2.jpg")]
    assert infer("--checkpoint", str(cxr_checkpoint), "--input", *inputs, "--output", str(out)) == 0
    names = {record["case"]: record["input"] for record in json.loads((out / "summary.json").read_text())["cases"]}
    assert names == {"c1_x": inputs[0], "c2_x": inputs[1], "x_2": inputs[2]}
    # the same names in another order, and nothing skipped as "outputs exist" for another input's outputs
    out2 = tmp_path / "out2"
    assert infer("--checkpoint", str(cxr_checkpoint), "--input", *inputs[::-1], "--output", str(out2)) == 0
    records = json.loads((out2 / "summary.json").read_text())["cases"]
    assert {r["case"]: r["input"] for r in records} == names and {r["status"] for r in records} == {"ok"}


def test_input_dot_inside_a_series_folder_is_named_after_the_folder(real_data, ct_checkpoint, tmp_path, monkeypatch):
    series = tmp_path / "patient_ct"
    _copy_series(real_data, series)
    monkeypatch.chdir(series)
    out = tmp_path / "out"
    assert infer("--checkpoint", str(ct_checkpoint), "--input", ".", "--output", str(out)) == 0
    assert (out / "patient_ct_seg.nii.gz").is_file() and not (out / "_seg.nii.gz").exists()


def test_a_gantry_tilted_series_is_refused(real_data, ct_checkpoint, tmp_path):
    """ImagePositionPatient drifting in-plane slice by slice: a volume read on a rectilinear grid would sit up to
    several centimetres away from the scan at its last slice."""
    files = _copy_series(real_data, tmp_path / "tilted")
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k * 1.0, z]  # 1 mm a slice along the column direction: a tilt
        ds.save_as(path)
    out = tmp_path / "out"
    assert infer("--checkpoint", str(ct_checkpoint), "--input", str(tmp_path / "tilted"), "--output", str(out)) == 1
    [record] = json.loads((out / "summary.json").read_text())["cases"]
    assert "not stacked along their normal" in record["error"] and "gantry-tilted" in record["error"]
    assert not list(out.glob("*_seg.nii.gz"))


def test_rescale_slope_zero_is_refused(real_data, ct_checkpoint, cxr_checkpoint, tmp_path):
    files = _copy_series(real_data, tmp_path / "ct")
    ds = pydicom.dcmread(files[10])
    ds.RescaleSlope = 0
    ds.save_as(files[10])
    synthesize("cxr", tmp_path / "cxr", n=1, layout="dicom")
    [radiograph] = (tmp_path / "cxr" / "images").glob("*.dcm")
    ds = pydicom.dcmread(radiograph)
    ds.RescaleSlope, ds.RescaleIntercept = 0, 100
    ds.save_as(radiograph)
    for checkpoint, source in ((ct_checkpoint, tmp_path / "ct"), (cxr_checkpoint, radiograph)):
        out = tmp_path / f"out-{source.name}"
        assert infer("--checkpoint", str(checkpoint), "--input", str(source), "--output", str(out)) == 1
        [record] = json.loads((out / "summary.json").read_text())["cases"]
        assert "RescaleSlope 0" in record["error"], record["error"]


def _nifti(array: np.ndarray, path: Path, grid: sitk.Image) -> Path:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(grid)
    sitk.WriteImage(image, str(path))
    return path


def test_non_finite_voxels_are_refused_by_inference_and_prepare(real_data, ct_checkpoint, tmp_path):
    grid = sitk.ReadImage(str(real_data("ct_cip") / "ct-64.nrrd"))
    volume = sitk.GetArrayFromImage(grid).astype(np.float32)
    volume[40, 30:34, 30:34] = np.nan
    volume[41, 0, 0] = np.inf
    data = tmp_path / "ct"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    _nifti(volume, data / "images" / "nan.nii.gz", grid)
    out = tmp_path / "out"
    assert infer("--checkpoint", str(ct_checkpoint), "--input", str(data / "images"), "--output", str(out)) == 1
    [record] = json.loads((out / "summary.json").read_text())["cases"]
    assert "nan.nii.gz: 17 voxel(s) NaN or infinite" in record["error"]
    shutil.copy(real_data("ct_cip") / "wholeLung-64.nrrd", data / "labels" / "nan.nrrd")
    _nifti(np.nan_to_num(volume), data / "images" / "finite.nii.gz", grid)
    shutil.copy(real_data("ct_cip") / "wholeLung-64.nrrd", data / "labels" / "finite.nrrd")
    report = prepare_datalist("ct", data, n_folds=0, image_dir="images", mask_pattern="labels/{stem}.nrrd")
    assert [Path(entry["image"]).name for entry in report.datalist] == ["finite.nii.gz"]
    [bad] = report.bad_pairs
    assert "NaN or infinite" in bad.reason and "nan.nii.gz" in bad.reason


def test_a_fifo_among_the_inputs_is_reported_never_opened(cxr_checkpoint, real_data, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(sorted(real_data("cxr_openist").glob("*.jpg"))[0], inputs / "good.jpg")
    os.mkfifo(inputs / "a.png")  # opening it for reading would block until a writer comes
    out = tmp_path / "out"
    assert infer("--checkpoint", str(cxr_checkpoint), "--input", str(inputs), "--output", str(out)) == 1
    records = _summary(out)
    assert records["good"]["status"] == "ok"
    assert records["a"]["status"] == "failed" and "not a regular file" in records["a"]["error"]
    with pytest.raises(RuntimeError) as raised:  # the readers of prepare and the bundles (MONAI wraps the error)
        get_task("cxr").image_transforms(None)({"image": str(inputs / "a.png")})
    assert isinstance(raised.value.__cause__, ImageFileError) and "a.png: not a regular file" in str(
        raised.value.__cause__
    )


def test_bad_checkpoints_are_one_line_and_exit_2(cxr_checkpoint, real_data, tmp_path, capsys):
    image = str(sorted(real_data("cxr_openist").glob("*.jpg"))[0])
    settings = cxr_checkpoint.parent / "settings.json"
    cases = {
        "garbage": (lambda path: path.write_bytes(b"\x00not a checkpoint" * 100), "not a PyTorch checkpoint"),
        "code": (lambda path: torch.save({"weights": _Payload()}, path), "holds Python objects beyond tensors"),
        "last_state": (lambda path: torch.save({"model": {}, "optimizer": {}, "trainer": {}}, path),
                       "a training state (model, optimizer, trainer)"),
        "other_network": (lambda path: torch.save({"weight": torch.zeros(3)}, path),
                          "the weights do not fit the network"),
    }  # fmt: skip
    for name, (write, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(settings, folder / "settings.json")
        write(folder / "model.pt")
        code = infer("--checkpoint", str(folder / "model.pt"), "--input", image, "--output", str(tmp_path / "o"))
        error = capsys.readouterr().err
        assert code == 2, name
        assert f"{folder / 'model.pt'}: {message}" in error, (name, error)
        assert "Traceback" not in error and "weights_only=False" not in error, name


class _Payload:
    """A class a pickle would have to run: the safe loader refuses it."""


def test_images_the_model_does_not_take_and_singular_affines_are_one_line(ct_checkpoint, real_data, tmp_path):
    volume = sitk.GetArrayFromImage(sitk.ReadImage(str(real_data("ct_cip") / "ct-64.nrrd")))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    four_d = sitk.JoinSeries([sitk.GetImageFromArray(volume)] * 2)
    sitk.WriteImage(four_d, str(inputs / "timeseries.nii.gz"))
    import nibabel

    flat = inputs / "flat.nii"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(flat))
    header = bytearray(flat.read_bytes()[:348])  # NIfTI-1: pixdim at byte 76, qform_code 252, sform_code 254
    header[76 + 8 : 76 + 12] = np.float32(0).tobytes()  # no spacing along y
    header[252:256] = np.zeros(2, np.int16).tobytes()  # and no qform or sform to take a grid from
    flat.write_bytes(bytes(header) + flat.read_bytes()[348:])
    assert nibabel.Nifti1Header.from_fileobj(open(flat, "rb"), check=False)["pixdim"][2] == 0
    out = tmp_path / "out"
    assert infer("--checkpoint", str(ct_checkpoint), "--input", str(inputs), "--output", str(out)) == 1
    records = _summary(out)
    assert "timeseries.nii.gz: an image of 2 channel(s)" in records["timeseries"]["error"]
    assert "the model takes 1-channel 3D images" in records["timeseries"]["error"]
    assert "flat.nii: singular NIfTI affine (voxel spacing [1.0, 0.0, 1.0]" in records["flat"]["error"]


def test_a_corrupt_settings_json_names_the_file(cxr_checkpoint, real_data, tmp_path, capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(cxr_checkpoint, folder / "model.pt")
    (folder / "settings.json").write_text('{"task": "cxr",\n')
    image = str(sorted(real_data("cxr_openist").glob("*.jpg"))[0])
    assert infer("--checkpoint", str(folder / "model.pt"), "--input", image, "--output", str(tmp_path / "o")) == 2
    error = capsys.readouterr().err
    assert f"{folder / 'settings.json'}: not valid JSON" in error and "Traceback" not in error


def test_compare_losses_refuses_a_read_only_out_and_a_negative_budget(real_data, tmp_path, capsys):
    from support import REPO_ROOT

    from medseg.tasks import prepare_datalist as prepare

    datalist = tmp_path / "cxr.json"
    prepare("cxr", real_data("cxr_openist"), datalist, n_folds=2, mask_pattern="{stem}@.png")
    bundle = str(REPO_ROOT / "bundles" / "cxr_lung_unet")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    common = ["compare-losses", "--bundle", bundle, "--datalist", str(datalist), "--losses", "bce,dice", "--folds", "2"]
    refusals = (
        (["--out", str(read_only / "c"), "--epochs", "1"], "argument --out: cannot create files"),
        (["--out", str(tmp_path / "c"), "--minutes", "-1"], "argument --minutes: must be above 0"),
    )
    for extra, message in refusals:
        if message.startswith("argument --out") and os.geteuid() == 0:
            read_only.chmod(0o755)  # root writes anywhere: a file where the folder should be instead
            (read_only / "c").write_text("a file")
            message = "argument --out: " + str(read_only / "c") + " is a file"
        with pytest.raises(SystemExit) as exit:
            main([*common, *extra])
        assert exit.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_an_anonymised_jpeg_2000_series_with_empty_uids_is_one_series(real_data, ct_checkpoint, tmp_path):
    """Present but empty SeriesInstanceUID, StudyInstanceUID and SOPClassUID, as anonymisers leave them, on a
    JPEG 2000 compressed copy of the real series: one series by its geometry, said so; its DICOM SEG alone is
    skipped, naming the attribute. A folder mixing it with another series still needs --series-uid."""
    from pydicom.uid import JPEG2000Lossless

    files = _copy_series(real_data, tmp_path / "anonymous")
    for path in files:
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless)
        ds.SeriesInstanceUID = ds.StudyInstanceUID = ds.SOPClassUID = ""
        ds.save_as(path)
    out = tmp_path / "out"
    code = infer("--checkpoint", str(ct_checkpoint), "--input", str(tmp_path / "anonymous"), "--output", str(out),
                 "--dicom-seg")  # fmt: skip
    assert code == 1  # the SEG could not be made: partial
    [record] = json.loads((out / "summary.json").read_text())["cases"]
    assert record["status"] == "partial" and "SOPClassUID" in record["error"]
    assert any("no SeriesInstanceUID" in note and "read as one series" in note for note in record["warnings"])
    reference = sitk.ReadImage(str(real_data("ct_cip") / "ct-64.nrrd"))
    written = sitk.ReadImage(record["outputs"]["mask"])
    assert written.GetSize() == reference.GetSize()
    np.testing.assert_allclose(written.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    plain = tmp_path / "plain"
    assert infer("--checkpoint", str(ct_checkpoint), "--input", str(real_data("ct_cip") / "ct-64Dicom"),
                 "--output", str(plain)) == 0  # fmt: skip
    np.testing.assert_array_equal(  # the same mask as the original series gives
        sitk.GetArrayFromImage(written), sitk.GetArrayFromImage(sitk.ReadImage(str(plain / "ct-64Dicom_seg.nii.gz")))
    )
    # a folder of two series, one of them without a UID: never merged; the largest is read, the other listed
    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "anonymous", mixed)
    odd = sorted(mixed.glob("*.dcm"))[-1]
    ds = pydicom.dcmread(odd)
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.save_as(odd)
    [case] = find_cases([mixed])
    assert case.series_uid == "" and len(case.files) == 78 and case.other_series == {"1.2.3.4": 1}
    with pytest.raises(DicomError, match="2 series in one folder"):
        check_dicom_series(mixed)


def test_names_of_inputs_no_folder_sets_apart_are_numbered_without_clashing(tmp_path):
    paths = [tmp_path / name for name in ("a/x.jpg", "a/x.dcm", "b/x.jpg", "c/x_2.png", "a/x.jpg")]
    # a/x.jpg and a/x.dcm share their folder: numbered, not named after every folder of their path; x_2 is taken
    assert unique_names(paths) == ["a_x", "a_x_2", "b_x", "x_2", "a_x_3"]
    assert unique_names(paths[:2]) == ["x", "x_2"]
