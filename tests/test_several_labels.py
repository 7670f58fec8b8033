"""Several labels end to end: the face bundle trained on the shared LFW faces with ``hair,skin`` (evaluation per
label), ``medseg infer`` writing label maps, per-label areas, DICOM SEG segments (read back with highdicom) and
overlays in the labels' colours; LUNA16's left and right lung apart; binary models unchanged.

References are independent of the code under test: the LFW ground truth decoded by hand from its colours, label
maps recomputed from the probability maps ``medseg infer`` writes, segment masks compared voxel for voxel.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import highdicom as hd
import matplotlib.colors
import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from support.tiny_models import train_tiny_model
from test_bundles import bundle_start, copied_alone, finished, ok  # pytest puts tests/ on sys.path

from medseg.cli import main as medseg_main
from medseg.inference.outputs import LABEL_COLOURS
from medseg.tasks import get_task, prepare_datalist

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

#: A U-Net small enough for a test run of the face bundle.
SMALL = [
    "--network_name", "unet", "--network_kwargs", '{"channels": [8, 16, 32], "strides": [2, 2]}',
    "--spatial_size", "[64,64]", "--batch_size", "4", "--labels", "['hair','skin']",
    "--optimizer#_target_", "torch.optim.Adam", "--learning_rate", "0.003", "--loss_name", "dice_bce",
]  # fmt: skip


def _rgb_dicom(photo: Path, path: Path) -> Path:
    """``photo`` as an RGB Secondary Capture DICOM file (as a camera or dermatoscope may store it)."""
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "face-1", "Face^One", "OT"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def faces(real_data, tmp_path_factory):
    """The face bundle (a plain copy) trained four epochs on 28 shared LFW faces with labels hair and skin, then
    evaluated on 6 others, as a user types it: ``(bundle folder, datalist, training log, evaluation log)``."""
    root = tmp_path_factory.mktemp("faces")
    datalist = prepare_datalist("lfw", real_data("lfw_parts"), None, n_folds=0).to_json()
    entries = datalist["training"][:40]
    names = [entry["case"] for entry in entries]
    datalist.update(training=entries, numTraining=len(entries))
    datalist["folds"] = [{"fold": 0, "train": names[:28], "validation": names[28:34], "test": names[34:]}]
    path = root / "faces.json"
    path.write_text(json.dumps(datalist))
    bundle = copied_alone("lfw_face_fcn", root)
    common = ["--datalist", str(path), "--official_splits", "False", *SMALL]
    train = ok(finished(bundle_start(bundle, "train", *common, "--epochs", "4", threads=1)))
    evaluation = ok(finished(bundle_start(bundle, "evaluate", *common, threads=1)))
    return bundle, datalist, train, evaluation


def _lfw_truth(ppm: Path) -> np.ndarray:
    """LFW Part Labels' colours by hand: red hair 1, green skin 2, blue background 0 (the dominant channel)."""
    rgb = np.asarray(Image.open(ppm).convert("RGB")).astype(int)
    return np.array([1, 2, 0])[rgb.argmax(axis=-1)]  # channel R, G, B -> hair, skin, background


def test_face_bundle_evaluates_each_label_and_their_mean(faces):
    bundle, _, _, _ = faces
    summary = json.loads((bundle / "eval" / "summary.json").read_text())
    for metric in ("test_mean_dice", "test_mean_iou", "test_hd95"):
        hair, skin, both = (summary[f"{metric}{suffix}"] for suffix in ("_hair", "_skin", ""))
        assert hair["n"] == skin["n"] == both["n"] == 6
        assert both["mean"] == pytest.approx((hair["mean"] + skin["mean"]) / 2, abs=1e-6)  # no empty label
    # the model learnt both labels a little (four epochs of 28 faces): skin better than chance's Dice
    assert summary["test_mean_dice_skin"]["mean"] > 0.3 and summary["test_mean_dice_hair"]["mean"] > 0.0
    # pixel accuracy over the three classes, per face, from the evaluation's own CSV: a share of pixels
    with (bundle / "eval" / "test_accuracy_raw.csv").open() as rows:
        accuracies = [float(row[1]) for row in csv.reader(rows) if row and row[0] != "filename"]
    assert len(accuracies) == 6 and all(0.2 < value <= 1 for value in accuracies)


def test_infer_writes_label_maps_segments_and_overlays_per_label(faces, tmp_path, real_data):
    bundle, datalist, _, _ = faces
    test = datalist["training"][34]
    photo = tmp_path / "face.jpg"
    photo.write_bytes(Path(test["image"]).read_bytes())
    dicom = _rgb_dicom(photo, tmp_path / "face_dicom.dcm")
    out = tmp_path / "out"
    arguments = ["--model-dir", str(bundle), "--input", str(photo), str(dicom), "--output", str(out)]
    assert medseg_main(["infer", *arguments, "--dicom-seg", "--overlay", "--probabilities"]) == 0
    records = {record["case"]: record for record in json.loads((out / "summary.json").read_text())["cases"]}
    label_map = nib.load(out / "face_seg.nii.gz").get_fdata()
    assert label_map.shape == (250, 250) and set(np.unique(label_map)) == {0, 1, 2}
    # the DICOM file gives the same label map (one frame: a third axis of one)
    np.testing.assert_array_equal(nib.load(out / "face_dicom_seg.nii.gz").get_fdata()[..., 0], label_map)
    # the label map is the argmax of the written probabilities, but for what the cleaning (the bundle's largest
    # component and filled holes) removed (now background) or filled (from the background only)
    probabilities = nib.load(out / "face_prob.nii.gz").get_fdata()  # a NIfTI vector: (x, y, 1, 1, components)
    assert probabilities.shape == (250, 250, 1, 1, 3)
    probabilities = probabilities[:, :, 0, 0]
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, atol=1e-3)
    argmax = probabilities.argmax(axis=-1)
    changed = argmax != label_map
    assert ((argmax[changed] == 0) | (label_map[changed] == 0)).all() and changed.mean() < 0.1
    # the summary's area per label is the label map's, in pixels only (a JPEG has no physical spacing)
    record = records["face"]
    assert record["labels"] == {
        "hair": {"pixels": int((label_map == 1).sum())},
        "skin": {"pixels": int((label_map == 2).sum())},
    }
    # agreement with the ground truth, decoded by hand: better than labelling every pixel background
    truth = _lfw_truth(Path(test["label"])).T  # (x, y) as medseg writes
    assert (label_map == truth).mean() > (truth == 0).mean() - 0.05
    # DICOM SEG: one segment per label, named and coded, each the label map's pixels
    seg = hd.seg.segread(out / "face_dicom_seg.dcm")
    segments = {item.SegmentLabel: item for item in seg.SegmentSequence}
    assert list(segments) == ["hair", "skin"]
    assert [segments[name].SegmentedPropertyTypeCodeSequence[0].CodeMeaning for name in segments] == ["Hair", "Skin"]
    masks = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[pydicom.dcmread(dicom).SOPInstanceUID], segment_numbers=[1, 2],
        ignore_spatial_locations=True,
    )[0]  # fmt: skip
    for number, name in enumerate(("hair", "skin"), start=1):
        np.testing.assert_array_equal(masks[..., number - 1].T, label_map == number, err_msg=name)
    # the overlay draws each label in its colour (above the legend, which shows both anyway)
    overlay = np.asarray(Image.open(out / "face_overlay.png").convert("RGB")).astype(int)
    picture = overlay[: int(overlay.shape[0] * 0.85)]
    for colour in LABEL_COLOURS[:2]:
        rgb = np.array([round(255 * c) for c in matplotlib.colors.to_rgb(colour)])
        assert (np.abs(picture - rgb).sum(axis=-1) < 60).sum() > 20, colour


def test_luna16_left_and_right_lungs_from_their_mask_values(synthetic):
    root = synthetic("luna16", n=1, shape=(16, 48, 48))
    entry = prepare_datalist("luna16", root, None, n_folds=0).datalist[0]
    values = sitk.GetArrayFromImage(sitk.ReadImage(entry["label"])).transpose(2, 1, 0)  # (x, y, z) as ITK reads
    task = get_task("luna16")
    one_hot = task.label_transforms(None, ["left_lung", "right_lung"])({"label": entry["label"]})["label"].numpy()
    assert one_hot.shape == (3, *values.shape)
    np.testing.assert_array_equal(one_hot[1], values == 3)  # LUNA16: 3 left lung
    np.testing.assert_array_equal(one_hot[2], values == 4)  # 4 right lung
    np.testing.assert_array_equal(one_hot[0], ~np.isin(values, [3, 4]))  # the trachea (5) is background
    lungs = task.label_transforms(None)({"label": entry["label"]})["label"].numpy()  # the default, as SegCaps
    np.testing.assert_array_equal(lungs[0], np.isin(values, [3, 4]))
    # the left lung lies at larger x (the patient's left, LPS)
    assert np.argwhere(values == 3)[:, 0].mean() > np.argwhere(values == 4)[:, 0].mean()
    with pytest.raises(ValueError, match="foreground sets the values of the one label lungs"):
        task.label_transforms(None, ["left_lung"], foreground=[3, 4, 5])


def test_a_ct_model_of_left_and_right_lungs_writes_both_as_segments(synthetic, tmp_path):
    root = synthetic("luna16", n=2, shape=(16, 48, 48))
    pairs = [(Path(e["image"]), Path(e["label"])) for e in prepare_datalist("luna16", root, None, n_folds=0).datalist]
    train_tiny_model(tmp_path / "model", "luna16", pairs, size=48, steps=120, labels=("left_lung", "right_lung"))
    series = synthetic("ct", n=1, shape=(16, 48, 48))
    folders = sorted(path for path in series.rglob("*") if path.is_dir() and any(path.glob("*.dcm")))
    out = tmp_path / "out"
    model = ["--model-dir", str(tmp_path / "model")]
    assert medseg_main(["infer", *model, "--input", str(folders[0]), "--output", str(out), "--dicom-seg"]) == 0
    (record,) = json.loads((out / "summary.json").read_text())["cases"]
    label_map = nib.load(out / f"{record['case']}_seg.nii.gz").get_fdata()
    assert set(np.unique(label_map)) <= {0, 1, 2} and set(record["labels"]) == {"left_lung", "right_lung"}
    seg = hd.seg.segread(out / f"{record['case']}_seg.dcm")
    codes = [(item.SegmentLabel, item.SegmentedPropertyTypeCodeSequence[0].CodeValue) for item in seg.SegmentSequence]
    assert codes == [("left_lung", "44029006"), ("right_lung", "3341006")]  # SNOMED CT: left lung, right lung


def test_the_cip_label_map_tells_the_lungs_apart_and_together_they_are_its_whole_lung_mask(real_data):
    cip = real_data("ct_cip")
    task = get_task("ct")
    (entry,) = prepare_datalist(
        "ct", cip, None, n_folds=0, mask_pattern="lm-{id}.nrrd", image_pattern="ct-{id}.nrrd", mask_encoding="cip"
    ).datalist
    assert Path(entry["label"]).name == "lm-64.nrrd"
    codes = sitk.GetArrayFromImage(sitk.ReadImage(entry["label"])).transpose(2, 1, 0)
    region = codes & 255  # by hand: value = type x 256 + region
    two = task.label_transforms(None, ["left_lung", "right_lung"], mask_encoding="cip")({"label": entry["label"]})
    left, right = two["label"][1].numpy() > 0, two["label"][2].numpy() > 0
    np.testing.assert_array_equal(left, np.isin(region, [9, 10, 11]))
    np.testing.assert_array_equal(right, np.isin(region, [12, 13, 14]))
    whole = sitk.GetArrayFromImage(sitk.ReadImage(str(cip / "wholeLung-64.nrrd"))).transpose(2, 1, 0) > 0
    np.testing.assert_array_equal(left | right, whole)  # the source's own whole-lung mask, voxel for voxel
    assert np.argwhere(left)[:, 0].mean() > np.argwhere(right)[:, 0].mean()  # LPS: the patient's left at larger x
    with pytest.raises(ValueError, match="need masks that tell them apart: mask_encoding luna16 or cip"):
        task.label_transforms(None, ["left_lung", "right_lung"])
