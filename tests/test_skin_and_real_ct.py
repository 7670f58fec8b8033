"""The skin-lesion task and the real chest CT scans as data (issue 34): layouts found, masks decoded as their
sources say, on synthetic data in both skin layouts and on the shared ISIC 2017 images and real CT volumes.

References: the data README's rules (ISIC JPEG masks: lesion above 127; ct_imlab masks: lung above 127.5), the
file formats' own conversions (Pillow's 1-bit to 8-bit grey), and counts made here with NumPy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from medseg.cli import main
from medseg.data import LayoutError, ct_datalist, detect_skin_layout, isic_datalist, ph2_datalist, skin_datalist
from medseg.tasks import get_task, prepare_datalist
from medseg.transforms import MergeMasks, mask_levels_threshold


def medseg(*argv: str) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as exit:
        return exit.code


def test_synthetic_isic_layout_keeps_the_challenge_split(synthetic):
    root = synthetic("skin", n=8, layout="isic")
    entries = skin_datalist(root)
    assert detect_skin_layout(root) == "isic" and len(entries) == 8
    assert [e["split"] for e in entries].count("validation") == 2  # every fourth case
    assert {e["case"] for e in entries} == {
        f"{'validationx' if k % 4 == 3 else 'trainx'}/imgx{k + 1}" for k in range(8)
    }
    for entry in entries:
        assert Path(entry["label"]).name == Path(entry["image"]).name.replace("imgx", "imgy")


def test_synthetic_ph2_layout_with_both_bmp_mask_depths(synthetic):
    root = synthetic("skin", n=4, layout="ph2")
    entries = ph2_datalist(root)
    assert detect_skin_layout(root) == "ph2" and [e["case"] for e in entries] == [
        "IMD002",
        "IMD003",
        "IMD004",
        "IMD005",
    ]
    modes = [Image.open(e["label"]).mode for e in entries]
    assert modes == ["RGB", "1", "RGB", "1"]  # 24-bit and 1-bit BMP masks, as PH2 has both


def test_bmp_masks_of_both_depths_read_as_their_png_conversion(synthetic, tmp_path):
    """A lesion mask as a 1-bit BMP, a 24-bit BMP, a PNG and a JPEG: the skin task's label path gives the same mask
    (the JPEG's compression noise at the edge aside, which stays within a pixel of the border)."""
    source = ph2_datalist(synthetic("skin", n=2, layout="ph2"))[0]["label"]
    drawing = np.asarray(Image.open(source).convert("L")) > 127
    variants = {
        "one_bit.bmp": Image.fromarray(drawing).convert("1"),
        "rgb.bmp": Image.fromarray((drawing * 255).astype(np.uint8)).convert("RGB"),
        "grey.png": Image.fromarray((drawing * 255).astype(np.uint8)),
        "lossy.jpg": Image.fromarray((drawing * 255).astype(np.uint8)),
    }
    labels = get_task("skin").label_transforms(None)
    read = {}
    for name, image in variants.items():
        image.save(tmp_path / name)
        read[name] = np.asarray(labels({"label": str(tmp_path / name)})["label"][0]).T  # (x, y) -> (row, column)
    for name in ("one_bit.bmp", "rgb.bmp", "grey.png"):
        np.testing.assert_array_equal(read[name], drawing, err_msg=name)
    assert np.mean(read["lossy.jpg"] != drawing) < 0.01


def test_skin_folder_layout_and_unknown_layout(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / "images" / "a.png")
    Image.new("L", (8, 6)).save(tmp_path / "masks" / "a.png")
    assert skin_datalist(tmp_path)[0]["case"] == "a"
    with pytest.raises(LayoutError, match="skin-lesion layout not recognised"):
        skin_datalist(tmp_path / "images")


def test_medseg_synth_and_prepare_for_skin(tmp_path, capsys):
    assert medseg("synth", "--task", "skin", "--layout", "isic", "--out", tmp_path / "isic", "--n", "8") == 0
    assert (
        medseg(
            "prepare",
            "--task",
            "skin",
            "--layout",
            "isic",
            "--data-root",
            tmp_path / "isic",
            "--out",
            tmp_path / "d.json",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        "medseg prepare --task skin" in printed
        and "valid pairs          8 (official splits: train 6, validation 2)" in printed
    )
    assert json.loads((tmp_path / "d.json").read_text())["numTraining"] == 8


def test_real_isic_2017_subset(real_data):
    root = real_data("skin_isic2017")
    entries = isic_datalist(root)
    splits = [entry["split"] for entry in entries]
    assert (splits.count("train"), splits.count("validation")) == (2000, 150) and len(
        {e["case"] for e in entries}
    ) == 2150
    # a JPEG mask as the data README binarises it (above 127), against the task's label path
    entry = next(e for e in entries if e["case"] == "validationx/imgx17")
    expected = np.asarray(Image.open(entry["label"]).convert("L")) > 127
    label = get_task("skin").label_transforms(None)({"label": entry["label"]})["label"][0]
    np.testing.assert_array_equal(np.asarray(label).T, expected)
    image = get_task("skin").image_transforms((256, 192))({"image": entry["image"]})["image"]
    assert tuple(image.shape) == (3, 256, 192) and 0 <= float(image.min()) and float(image.max()) <= 1


def test_real_imlab_ct_masks_thresholded_at_their_levels(real_data):
    """The imlab scans' masks were resampled by their source (values -115 to 345): the task finds their name rule
    and binarises them at the midpoint of their two levels, 127.5, as the data README says, not at half their
    maximum (about 172, which loses 1.6 % of the lungs)."""
    root = real_data("ct_imlab")
    entries = ct_datalist(root)
    assert [e["case"] for e in entries] == [f"id00{k}-128x128x64" for k in (1, 2, 3)]
    for entry in entries:
        assert entry["label"] == entry["image"].replace(".nii.gz", "-msk.nii.gz")
        values = sitk.GetArrayFromImage(sitk.ReadImage(entry["label"]))
        assert mask_levels_threshold(torch.as_tensor(values)) == 127.5
        label = get_task("ct").label_transforms(None)({"label": entry["label"]})["label"][0]
        expected = values > 127.5  # (z, y, x); the task's axes are (x, y, z)
        np.testing.assert_array_equal(np.asarray(label).transpose(2, 1, 0), expected)
        assert (values > values.max() / 2).sum() < expected.sum()  # half the maximum would lose lung voxels


def test_real_cip_ct_is_found_without_a_rule_and_its_01_mask_kept(real_data):
    entries = ct_datalist(real_data("ct_cip"))
    assert [(Path(e["image"]).name, Path(e["label"]).name) for e in entries] == [("ct-64.nrrd", "wholeLung-64.nrrd")]
    values = sitk.GetArrayFromImage(sitk.ReadImage(entries[0]["label"]))
    label = get_task("ct").label_transforms(None)({"label": entries[0]["label"]})["label"][0]
    assert int(label.sum()) == int((values > 0).sum())


def test_mask_thresholds_by_hand():
    mask = torch.tensor([[0.0, 0.0, 0.0, 255.0, 255.0, 300.0, -40.0, 140.0, 120.0]])
    assert mask_levels_threshold(mask) == 127.5
    assert MergeMasks("levels")(mask).tolist() == [[0, 0, 0, 1, 1, 1, 0, 1, 0]]
    assert MergeMasks("half_max")(mask).tolist() == [[0, 0, 0, 1, 1, 1, 0, 0, 0]]  # 150: the 140 is lost
    assert MergeMasks(100)(mask).tolist() == [[0, 0, 0, 1, 1, 1, 0, 1, 1]]
    assert mask_levels_threshold(torch.tensor([[0.0, 1.0, 1.0, 0.0]])) == 0.5


def test_both_real_ct_sources_in_one_datalist_grouped_by_scan(real_data, tmp_path):
    roots = [real_data("ct_imlab"), real_data("ct_cip")]
    report = prepare_datalist("ct", roots, tmp_path / "ct.json", n_folds=4)
    assert report.summary["cases"] == 4 and report.summary["groups"] == 4
    tested = sorted(case for fold in report.folds for case in fold.test)
    assert tested == sorted(e["case"] for e in report.datalist)  # every scan tested once, never split
    copy = tmp_path / "imlab"
    shutil.copytree(roots[0], copy)
    (copy / "id003-128x128x64-msk.nii.gz").unlink()
    skipped = []
    assert len(ct_datalist(copy, skipped=skipped)) == 2 and "no mask" in skipped[0].reason


def test_ct_bundle_trains_on_every_real_scan_and_validates_on_them(real_data, tmp_path, capsys):
    """The CT bundle's default (``--val_fraction 0``): none of the four real scans is held out; validation scores the
    training scans, and says so. With the template's 0.1, one scan of four (10 % rounded up) validates, untrained."""
    from medseg.bundle import load_subsets

    roots = [str(real_data("ct_imlab")), str(real_data("ct_cip"))]
    common = {"task": "ct", "dataset_dir": roots, "datalist": None, "fold": 0, "folds": 1}
    every = load_subsets(**common, output_dir=tmp_path / "all", val_fraction=0)
    cases = sorted(entry["case"] for entry in every["all"])
    assert len(cases) == 4 and sorted(e["case"] for e in every["train"]) == cases
    assert every["validation"] == every["train"] and not every["test"]
    assert "validation scores the 4 training cases" in capsys.readouterr().out
    held = load_subsets(**common, output_dir=tmp_path / "held", val_fraction=0.1)
    assert len(held["validation"]) == 1 and len(held["train"]) == 3
    assert not {e["case"] for e in held["validation"]} & {e["case"] for e in held["train"]}
    # the datalist kept in the output folder is prepared again when the share changes, not reused
    again = load_subsets(**common, output_dir=tmp_path / "held", val_fraction=0)
    assert len(again["train"]) == 4
