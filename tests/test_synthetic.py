"""The synthetic datasets: the layouts of the real ones, the properties their adapters rely on, determinism."""

from __future__ import annotations

import hashlib
import re

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from medseg.cli import main
from medseg.data.synthetic import LUNA16_UID_PREFIX
from medseg.tasks import get_task, synthesize, synthetic_names
from medseg.transforms import HELEN_CLASSES


def _centroid_x(mask: np.ndarray) -> float:
    return float(np.argwhere(mask)[:, -1].mean())


# ------------------------------------------------------------------ LUNA16


@pytest.fixture(scope="module")
def luna16(synthetic):
    root = synthetic("luna16", n=2)
    scans = sorted((root / "subset0").glob("*.mhd"))
    return root, scans


def test_luna16_layout_and_names(luna16):
    root, scans = luna16
    assert len(scans) == 2
    for scan in scans:
        assert scan.stem.startswith(LUNA16_UID_PREFIX)
        assert re.fullmatch(r"[0-9.]+", scan.stem)
        assert scan.with_suffix(".raw").is_file()
        assert "ElementType = MET_SHORT" in scan.read_text()
        assert (root / "seg-lungs-LUNA16" / scan.name).is_file()


def test_luna16_geometry_anisotropic_non_identity_origin(luna16):
    root, scans = luna16
    for scan in scans:
        image = sitk.ReadImage(str(scan))
        mask = sitk.ReadImage(str(root / "seg-lungs-LUNA16" / scan.name))
        sx, sy, sz = image.GetSpacing()
        assert sx == pytest.approx(sy) and sz > 1.4 * sx  # thicker slices than pixels, as in LUNA16
        assert all(abs(o) > 1.0 for o in image.GetOrigin())
        assert image.GetSize() == mask.GetSize()
        np.testing.assert_allclose(image.GetSpacing(), mask.GetSpacing())
        np.testing.assert_allclose(image.GetOrigin(), mask.GetOrigin())
    assert sitk.ReadImage(str(scans[0])).GetSpacing() != sitk.ReadImage(str(scans[1])).GetSpacing()


def test_luna16_labels_and_hounsfield_units(luna16):
    root, scans = luna16
    for scan in scans:
        hu = sitk.GetArrayFromImage(sitk.ReadImage(str(scan))).astype(float)
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "seg-lungs-LUNA16" / scan.name)))
        assert set(np.unique(labels)) == {0, 3, 4, 5}
        assert -1024 <= hu.min() and hu.max() <= 3071
        corners = hu[:, :4, :4]
        assert np.median(corners) == pytest.approx(-1000, abs=30)  # air outside the body
        assert -900 < np.median(hu[np.isin(labels, (3, 4))]) < -800  # lung parenchyma
        assert np.median(hu[labels == 5]) < -950  # trachea is air
        soft = hu[(labels == 0) & (hu > -200) & (hu < 300)]
        assert 0 < np.median(soft) < 80 and soft.size > 0.15 * hu.size  # soft tissue fills the body
        bone = hu[hu > 400]
        assert bone.size > 100 and np.percentile(bone, 99) < 1600
        # patient's left (label 3) lies at larger x, as ITK reads LPS-oriented scans
        assert _centroid_x(labels == 3) > _centroid_x(labels == 4)


# ------------------------------------------------------------------ chest X-ray (Montgomery)


def test_cxr_montgomery_layout(synthetic):
    root = synthetic("cxr", n=4)
    images = sorted((root / "CXR_png").iterdir())
    assert [p.name for p in images] == [f"MCUCXR_{i:04d}_0.png" for i in range(4)]
    sizes = set()
    for path in images:
        image = Image.open(path)
        assert image.mode == "L"
        sizes.add(image.size)
        left = np.array(Image.open(root / "ManualMask" / "leftMask" / path.name))
        right = np.array(Image.open(root / "ManualMask" / "rightMask" / path.name))
        assert left.shape == right.shape == image.size[::-1]
        assert set(np.unique(left)) == set(np.unique(right)) == {0, 255}
        assert not np.any((left > 0) & (right > 0))
        # radiological view: the patient's left lung is on the image's right
        assert _centroid_x(left > 0) > _centroid_x(right > 0)
        pixels = np.asarray(image, float)
        lungs = (left > 0) | (right > 0)
        assert 0.1 < lungs.mean() < 0.5
        assert pixels[lungs].mean() < pixels[~lungs & (pixels > 60)].mean()  # lungs are darker than the body
    assert len(sizes) > 1, "image sizes must vary"


# ------------------------------------------------------------------ chest X-ray (Shenzhen, DICOM radiographs)


def test_shenzhen_layout(synthetic):
    root = synthetic("cxr", n=4, layout="shenzhen")
    images = sorted((root / "CXR_png").iterdir())
    assert all(re.fullmatch(r"CHNCXR_\d{4}_[01]\.png", p.name) for p in images)
    for image in images:
        mask = np.asarray(Image.open(root / "masks" / f"{image.stem}_mask.png"))
        assert mask.shape == np.asarray(Image.open(image)).shape and set(np.unique(mask)) == {0, 255}
        assert 0.1 < (mask > 0).mean() < 0.5


def test_dicom_radiographs_are_12_bit_and_match_their_masks(synthetic):
    root = synthetic("cxr", n=2, layout="dicom")
    for path in sorted((root / "images").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        assert ds.Modality == "DX" and ds.BitsStored == 12 and ds.PhotometricInterpretation == "MONOCHROME2"
        pixels = ds.pixel_array
        assert pixels.max() < 4096 and pixels.max() > 2000
        mask = np.asarray(Image.open(root / "masks" / f"{path.stem}.png")) > 0
        assert mask.shape == pixels.shape
        assert pixels[mask].mean() < pixels[~mask & (pixels > 1000)].mean()  # lungs darker than the body


# ------------------------------------------------------------------ faces (LFW Part Labels, HELEN)


def test_lfw_layout_colours_and_splits(synthetic):
    root = synthetic("lfw", n=10)
    images = sorted((root / "lfw_funneled").glob("*/*.jpg"))
    assert len(images) == 10
    listed = []
    for split in ("train", "validation", "test"):
        lines = (root / f"parts_{split}.txt").read_text().splitlines()
        listed += lines
    assert len(listed) == len(set(listed)) == 10
    pure = {(255, 0, 0), (0, 255, 0), (0, 0, 255)}
    for path in images:
        person = path.parent.name
        assert re.fullmatch(re.escape(person) + r"_\d{4}\.jpg", path.name)
        assert f"{person} {int(path.stem[-4:])}" in listed
        photo = Image.open(path)
        assert photo.mode == "RGB" and photo.size == (250, 250)
        labels = np.array(Image.open(root / "parts_lfw_funneled_gt_images" / f"{path.stem}.ppm"))
        assert labels.shape == (250, 250, 3)
        colours = {tuple(c) for c in np.unique(labels.reshape(-1, 3), axis=0)}
        assert {(0, 255, 0), (0, 0, 255)} <= colours <= pure
    assert len(list((root / "parts_lfw_funneled_gt_images").glob("*.ppm"))) == 10


def test_helen_layout_and_soft_labels(synthetic):
    root = synthetic("helen", n=5)
    listed = []
    for name in ("exemplars.txt", "tuning.txt", "testing.txt"):
        for line in (root / name).read_text().splitlines():
            number, comma, face = line.partition(" , ")
            assert number.isdigit() and comma
            listed.append(face)
    assert sorted(listed) == sorted(p.stem for p in (root / "images").glob("*.jpg"))
    for face in listed:
        photo = Image.open(root / "images" / f"{face}.jpg")
        assert photo.mode == "RGB" and photo.size[0] == photo.size[1]
        stack = np.stack(
            [
                np.asarray(Image.open(root / "labels" / face / f"{face}_lbl{c:02d}.png"))
                for c in range(len(HELEN_CLASSES))
            ]
        )
        assert stack.shape[1:] == photo.size[::-1]
        assert len(np.unique(stack)) > 2  # anti-aliased, not 0/255 only
        classes = stack.argmax(axis=0)
        assert {1, 2, 3, 4, 5, 6, 7, 9} <= set(np.unique(classes))  # skin, brows, eyes, nose, lips drawn


# ------------------------------------------------------------------ DICOM CT series + NIfTI mask


@pytest.fixture(scope="module")
def dicom_ct(synthetic):
    return synthetic("ct", n=1, layout="dicom")


def test_dicom_series_is_consistent(dicom_ct):
    files = sorted((dicom_ct / "images" / "case000").glob("*.dcm"))
    assert len(files) > 10
    datasets = [pydicom.dcmread(f) for f in files]
    for attr in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PixelSpacing", "SliceThickness"):
        assert len({str(getattr(ds, attr)) for ds in datasets}) == 1, attr
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    assert all(ds.Modality == "CT" and ds.SOPClassUID == pydicom.uid.CTImageStorage for ds in datasets)
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in datasets])
    np.testing.assert_allclose(np.diff(z), float(datasets[0].SliceThickness), rtol=1e-4)
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets])
    assert hu.min() >= -1024 and np.median(hu[:, :3, :3]) == pytest.approx(-1000, abs=30)


def test_dicom_series_and_nifti_mask_share_the_grid(dicom_ct):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(dicom_ct / "images" / "case000")))
    image = reader.Execute()
    mask = sitk.ReadImage(str(dicom_ct / "labels" / "case000.nii.gz"))
    assert image.GetSize() == mask.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), mask.GetSpacing(), rtol=1e-5)
    np.testing.assert_allclose(image.GetOrigin(), mask.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(image.GetDirection(), mask.GetDirection(), atol=1e-6)
    # nibabel's RAS affine of the mask maps voxel (0,0,0) to the first slice's LPS position, negated in x and y
    first = pydicom.dcmread(sorted((dicom_ct / "images" / "case000").glob("*.dcm"))[0])
    corner = nib.load(dicom_ct / "labels" / "case000.nii.gz").affine @ [0, 0, 0, 1]
    np.testing.assert_allclose(corner[:3] * [-1, -1, 1], [float(v) for v in first.ImagePositionPatient], atol=1e-3)
    hu = sitk.GetArrayFromImage(image)
    lungs = sitk.GetArrayFromImage(mask)
    assert set(np.unique(lungs)) == {0, 1}
    assert np.median(hu[lungs == 1]) < -750  # the mask covers the low-density lungs of the series


# ------------------------------------------------------------------ determinism and command line


def _digest(root) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    "name, layout", [(name, layout) for name in synthetic_names() for layout in get_task(name).synthetic]
)
def test_seed_determines_the_data(tmp_path, name, layout):
    for folder, seed in (("a", 3), ("b", 3), ("c", 4)):
        synthesize(name, tmp_path / folder, n=2, seed=seed, layout=layout)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_synth_command(tmp_path, capsys):
    assert main(["synth", "--task", "cxr", "--out", str(tmp_path), "--n", "2", "--seed", "1"]) == 0
    assert "wrote 2 synthetic cxr case(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "CXR_png").glob("*.png"))) == 2
    with pytest.raises(SystemExit):
        main(["synth", "--task", "mnist", "--out", str(tmp_path)])


def test_synthesize_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'mri'"):
        synthesize("mri", tmp_path, n=1)
    with pytest.raises(ValueError, match="at least 1"):
        synthesize("cxr", tmp_path, n=0)


def test_synth_command_knows_the_new_tasks(tmp_path, capsys):
    assert main(["synth", "--task", "helen", "--out", str(tmp_path), "--n", "2"]) == 0
    assert "wrote 2 synthetic helen case(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "images").glob("*.jpg"))) == 2
