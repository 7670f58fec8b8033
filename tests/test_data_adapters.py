"""Dataset adapters on the synthetic layouts and on the real data: pairs found, errors naming the path."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from medseg.data import (
    BadPair,
    LayoutError,
    MissingFileError,
    NameRule,
    ct_datalist,
    cxr_datalist,
    detect_cxr_layout,
    helen_datalist,
    lfw_datalist,
    luna16_datalist,
    montgomery_datalist,
    shenzhen_datalist,
)
from medseg.data.layout import detect_sibling_masks


def _copy(root: Path, tmp_path: Path) -> Path:
    target = tmp_path / root.name
    shutil.copytree(root, target)
    return target


# ------------------------------------------------------------------ name rules


def test_name_rule_fields_and_masks():
    rule = NameRule("wholeLung-{id}.nrrd", image_pattern="ct-{id}.nrrd")
    assert rule.image_fields("ct-64.nrrd") == {"id": "64", "stem": "ct-64", "name": "ct-64.nrrd"}
    assert rule.image_fields("lm-64.nrrd") is None
    # without an extension the pattern matches the stem: {id} stops before ".nrrd"
    assert NameRule("wholeLung-{id}.nrrd", image_pattern="ct-{id}").image_fields("ct-64.nrrd")["id"] == "64"
    assert rule.is_mask("wholeLung-64.nrrd") and not rule.is_mask("ct-64.nrrd")
    assert NameRule("{stem}@.png").image_fields("a.b.nii.gz")["stem"] == "a.b"
    assert NameRule("{stem}@.png").is_mask("x-1@.png") and not NameRule("{stem}@.png").is_mask("x-1.jpg")
    with pytest.raises(ValueError, match=r"uses \['id'\]"):
        NameRule("mask-{id}.png")


def test_name_rule_wildcard_must_match_one_file(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.nii.gz").touch()
    (tmp_path / "labels" / "b.nii.gz").touch()
    (tmp_path / "labels" / "b.nrrd").touch()
    rule = NameRule("labels/{stem}.*")
    assert rule.mask_path(tmp_path, {"stem": "a", "name": "a.dcm"}) == (tmp_path / "labels" / "a.nii.gz", "")
    path, reason = rule.mask_path(tmp_path, {"stem": "b", "name": "b"})
    assert path is None and "2 masks match 'labels/b.*'" in reason
    assert rule.mask_path(tmp_path, {"stem": "c", "name": "c"}) == (None, "no mask matching 'labels/c.*'")


# ------------------------------------------------------------------ chest X-ray


def test_montgomery_lists_both_lung_masks(synthetic):
    root = synthetic("cxr", n=3)
    datalist = montgomery_datalist(root)
    assert [e["case"] for e in datalist] == [f"MCUCXR_{i:04d}_0" for i in range(3)]
    for entry in datalist:
        left, right = map(Path, entry["label"])
        assert left.parent.name == "leftMask" and right.parent.name == "rightMask"
        assert left.name == right.name == Path(entry["image"]).name
        assert entry["patient"] == entry["case"][:-2]
    assert cxr_datalist(root) == datalist  # detected


def test_montgomery_missing_mask_raises_or_is_skipped(synthetic, tmp_path):
    root = _copy(synthetic("cxr", n=3), tmp_path)
    missing = root / "ManualMask" / "rightMask" / "MCUCXR_0001_0.png"
    missing.unlink()
    with pytest.raises(MissingFileError, match=r"MCUCXR_0001_0\.png: no lung mask"):
        montgomery_datalist(root)
    skipped: list[BadPair] = []
    assert [e["case"] for e in montgomery_datalist(root, skipped)] == ["MCUCXR_0000_0", "MCUCXR_0002_0"]
    assert skipped == [BadPair(str(root / "CXR_png" / "MCUCXR_0001_0.png"), str(missing), "no lung mask")]


def test_shenzhen_pairs_mask_suffix(synthetic, tmp_path):
    root = synthetic("cxr", n=3, layout="shenzhen")
    datalist = shenzhen_datalist(root)
    assert len(datalist) == 3
    for entry in datalist:
        assert Path(entry["label"]).name == f"{entry['case']}_mask.png"
        assert entry["case"].startswith("CHNCXR_") and entry["patient"] == entry["case"][:-2]
    assert cxr_datalist(root) == datalist
    bare = tmp_path / "bare"
    shutil.copytree(root / "CXR_png", bare / "CXR_png")
    with pytest.raises(LayoutError, match=r"bare: not a Shenzhen layout \(no masks/ or mask/ folder"):
        shenzhen_datalist(bare)


def test_cxr_folder_pair_with_dicom_images(synthetic):
    root = synthetic("cxr", n=2, layout="dicom")
    datalist = cxr_datalist(root)
    assert [Path(e["image"]).suffix for e in datalist] == [".dcm", ".dcm"]
    assert [Path(e["label"]).parent.name for e in datalist] == ["masks", "masks"]
    assert [e["case"] for e in datalist] == ["CXR_0000", "CXR_0001"]


def test_cxr_unrecognised_layout_names_the_folder(tmp_path):
    (tmp_path / "a.png").touch()
    with pytest.raises(LayoutError, match=f"{tmp_path}: chest X-ray layout not recognised.*mask-name rule"):
        cxr_datalist(tmp_path)
    with pytest.raises(LayoutError, match=r"no image .* matches the image pattern"):
        cxr_datalist(tmp_path, mask_pattern="{stem}_mask.png", image_pattern="CXR*")


def test_cxr_real_openist_150_pairs(real_data):
    root = real_data("cxr_openist")
    datalist = cxr_datalist(root, mask_pattern="{stem}@.png")
    assert len(datalist) == 150
    for entry in datalist:
        image, mask = Path(entry["image"]), Path(entry["label"])
        assert image.suffix == ".jpg" and mask.name == f"{image.stem}@.png" and mask.is_file()
    assert len({e["case"] for e in datalist}) == 150


# ------------------------------------------------------------------ CT


def test_luna16_pairs_scans_and_masks(synthetic):
    root = synthetic("luna16", n=2)
    datalist = luna16_datalist(root)
    assert len(datalist) == 2
    for entry in datalist:
        assert Path(entry["image"]).parent.name == "subset0" and entry["subset"] == "subset0"
        assert Path(entry["label"]) == root / "seg-lungs-LUNA16" / Path(entry["image"]).name
        assert entry["case"] == entry["patient"] == Path(entry["image"]).stem


def test_luna16_scan_without_mask_is_reported_and_skipped(synthetic, tmp_path):
    root = _copy(synthetic("luna16", n=2), tmp_path)
    scan = sorted((root / "subset0").glob("*.mhd"))[0]
    (root / "seg-lungs-LUNA16" / scan.name).unlink()
    with pytest.warns(UserWarning, match=f"1 LUNA16 scan\\(s\\) without a lung mask skipped: {scan.name}"):
        assert len(luna16_datalist(root)) == 1
    skipped: list[BadPair] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(luna16_datalist(root, skipped=skipped)) == 1
    assert [(b.image, b.reason) for b in skipped] == [(str(scan), "no lung mask")]
    with pytest.raises(LayoutError, match=f"{tmp_path}: not a LUNA16 layout"):
        luna16_datalist(tmp_path)


def test_ct_detects_dicom_series_folders_and_labels(synthetic):
    root = synthetic("ct", n=2, layout="dicom")
    datalist = ct_datalist(root)
    assert [e["case"] for e in datalist] == ["case000", "case001"]
    for entry in datalist:
        assert Path(entry["image"]).is_dir() and Path(entry["label"]) == root / "labels" / f"{entry['case']}.nii.gz"


def test_ct_without_rule_or_match_names_the_folder(tmp_path):
    (tmp_path / "x.nrrd").touch()
    with pytest.raises(LayoutError, match=f"{tmp_path}: no images/ and labels/ folders, no masks beside the volumes"):
        ct_datalist(tmp_path)
    with pytest.raises(MissingFileError, match=r"x.nrrd: no mask 'x_mask.nii.gz'"):
        ct_datalist(tmp_path, mask_pattern="{stem}_mask.nii.gz")


def test_ct_real_cip_volume_and_dicom_series(real_data):
    root = real_data("ct_cip")
    volume = ct_datalist(root, mask_pattern="wholeLung-{id}.nrrd", image_pattern="ct-{id}.nrrd")
    series = ct_datalist(root, mask_pattern="wholeLung-{id}.nrrd", image_pattern="ct-{id}Dicom")
    assert volume == [{"image": str(root / "ct-64.nrrd"), "label": str(root / "wholeLung-64.nrrd"), "case": "ct-64"}]
    assert series == [
        {"image": str(root / "ct-64Dicom"), "label": str(root / "wholeLung-64.nrrd"), "case": "ct-64Dicom"}
    ]
    # a looser pattern also takes the DICOM folder, whose id (64Dicom) has no mask: reported, not lost
    skipped: list[BadPair] = []
    assert ct_datalist(root, mask_pattern="wholeLung-{id}.nrrd", image_pattern="ct-{id}", skipped=skipped) == volume
    assert skipped == [
        BadPair(str(root / "ct-64Dicom"), str(root / "wholeLung-64Dicom.nrrd"), "no mask 'wholeLung-64Dicom.nrrd'")
    ]


# ------------------------------------------------------------------ faces


def test_lfw_official_split_lists(synthetic):
    root = synthetic("lfw", n=10)
    datalist = lfw_datalist(root)
    counts = {s: len((root / f"parts_{s}.txt").read_text().splitlines()) for s in ("train", "validation", "test")}
    assert {s: sum(e["split"] == s for e in datalist) for s in counts} == counts
    assert [e["case"] for e in lfw_datalist(root, split="validation")] == [
        e["case"] for e in datalist if e["split"] == "validation"
    ]
    for entry in datalist:
        image, label = Path(entry["image"]), Path(entry["label"])
        assert image.parent.name == entry["patient"] and label.name == f"{image.stem}.ppm"


def test_lfw_without_lists_pairs_every_ppm(synthetic, tmp_path):
    root = _copy(synthetic("lfw", n=10), tmp_path)
    for name in ("train", "validation", "test"):
        (root / f"parts_{name}.txt").unlink()
    datalist = lfw_datalist(root)
    assert len(datalist) == 10 and all("split" not in e for e in datalist)
    photo = Path(datalist[3]["image"])
    photo.unlink()
    with pytest.raises(MissingFileError, match=f"{photo}: no such file"):
        lfw_datalist(root)
    with pytest.raises(LayoutError, match="not an LFW Part Labels layout"):
        lfw_datalist(root / "lfw_funneled")


def test_lfw_real_subset_600_training_150_validation(real_data):
    root = real_data("lfw_parts")
    datalist = lfw_datalist(root)
    assert sum(e["split"] == "train" for e in datalist) == 600
    assert sum(e["split"] == "validation" for e in datalist) == 150
    assert len(lfw_datalist(root, split="train")) == 600
    first = datalist[0]
    assert first["case"] == "Inga_Hall_0001" and first["patient"] == "Inga_Hall"
    assert first["label"] == str(root / "parts_lfw_funneled_gt_images" / "Inga_Hall_0001.ppm")


def test_helen_lists_eleven_label_images(synthetic, tmp_path):
    root = synthetic("helen", n=5)
    datalist = helen_datalist(root)
    assert [e["split"] for e in datalist] == ["train", "train", "train", "validation", "test"]
    for entry in datalist:
        assert len(entry["label"]) == 11
        assert [Path(p).name for p in entry["label"]] == [f"{entry['case']}_lbl{c:02d}.png" for c in range(11)]
        assert entry["patient"] == entry["case"].rsplit("_", 1)[0]
    copy = _copy(root, tmp_path)
    gone = copy / "labels" / datalist[1]["case"] / f"{datalist[1]['case']}_lbl07.png"
    gone.unlink()
    with pytest.raises(MissingFileError, match=f"no such file {gone}"):
        helen_datalist(copy)
    skipped: list[BadPair] = []
    assert len(helen_datalist(copy, skipped=skipped)) == 4 and skipped[0].label == str(gone)


@pytest.mark.parametrize("suffix", ["@", "_mask", "-mask", "_seg"])
def test_masks_beside_their_images_are_detected(synthetic, tmp_path, suffix):
    """OpenIST's NAME.jpg + NAME@.png (and the other common sibling names) need no mask-name rule."""
    source = synthetic("cxr", n=3, layout="shenzhen")
    for image in sorted((source / "CXR_png").glob("*.png")):
        shutil.copy(image, tmp_path / image.name)
        shutil.copy(source / "masks" / f"{image.stem}_mask.png", tmp_path / f"{image.stem}{suffix}.png")
    assert detect_sibling_masks(tmp_path) == f"{{stem}}{suffix}.png"
    assert detect_cxr_layout(tmp_path) == "folder"
    entries = cxr_datalist(tmp_path)
    assert [Path(e["label"]).name for e in entries] == [f"{Path(e['image']).stem}{suffix}.png" for e in entries]
    assert len(entries) == 3
