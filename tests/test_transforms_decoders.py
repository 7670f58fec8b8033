"""Ground-truth decoders and presets against pixels counted independently (raw bytes, Pillow, SimpleITK, NumPy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from medseg.data import cxr_datalist, helen_datalist, lfw_datalist, montgomery_datalist
from medseg.tasks import get_task
from medseg.transforms import (
    ArgmaxToLabels,
    ScaleGreyLevels,
    ToGreyscale,
    cxr_image_transforms,
    image_readers_2d,
    load_imaged,
    lung_label_map,
)


def read_ppm(path: Path) -> np.ndarray:
    """Binary PPM (P6, maxval 255) parsed from its bytes, without Pillow: (rows, cols, 3) uint8."""
    data = path.read_bytes()
    fields, position = [], 0
    while len(fields) < 4:  # magic, width, height, maxval, separated by whitespace
        while data[position : position + 1].isspace():
            position += 1
        start = position
        while not data[position : position + 1].isspace():
            position += 1
        fields.append(data[start:position])
    assert fields[0] == b"P6" and fields[3] == b"255"
    width, height = int(fields[1]), int(fields[2])
    return np.frombuffer(data[position + 1 :], np.uint8)[: width * height * 3].reshape(height, width, 3)


# ------------------------------------------------------------------ LFW Part Labels


@pytest.fixture(scope="module")
def inga_hall(real_data):
    root = real_data("lfw_parts")
    entry = next(e for e in lfw_datalist(root, split="train") if e["case"] == "Inga_Hall_0001")
    return entry, read_ppm(Path(entry["label"]))


def test_lfw_colour_counts_of_a_real_ppm(inga_hall):
    entry, rgb = inga_hall
    counts = {
        name: int((rgb == colour).all(axis=-1).sum())
        for name, colour in {"hair": (255, 0, 0), "skin": (0, 255, 0), "background": (0, 0, 255)}.items()
    }
    assert counts == {
        "hair": 16725,
        "skin": 14485,
        "background": 31290,
    }  # every one of the 250 x 250 pixels is a pure colour
    with_hair = get_task("lfw").pair_transforms(None, ["face"])(dict(entry))["label"]
    without = get_task("lfw").pair_transforms(None, ["skin"])(dict(entry))["label"]
    assert with_hair.shape == without.shape == (1, 250, 250)
    assert int(with_hair.sum()) == counts["skin"] + counts["hair"]
    assert int(without.sum()) == counts["skin"]
    # MONAI's PILReader gives (x, y): the transpose of the (row, col) array
    np.testing.assert_array_equal(without[0].numpy().T, (rgb == (0, 255, 0)).all(axis=-1))
    np.testing.assert_array_equal((with_hair - without)[0].numpy().T, (rgb == (255, 0, 0)).all(axis=-1))
    # hair and skin apart: one-hot, background first, in the order asked for
    both = get_task("lfw").pair_transforms(None, ["hair", "skin"])(dict(entry))["label"]
    assert both.shape == (3, 250, 250) and bool((both.sum(dim=0) == 1).all())
    for channel, colour in enumerate([(0, 0, 255), (255, 0, 0), (0, 255, 0)]):
        np.testing.assert_array_equal(both[channel].numpy().T, (rgb == colour).all(axis=-1))


def test_lfw_image_is_rgb_or_grey_in_unit_range(inga_hall):
    entry, _ = inga_hall
    photo = np.asarray(Image.open(entry["image"]), float)
    rgb = get_task("lfw").pair_transforms((250, 250))(dict(entry))["image"]
    grey = get_task("lfw").pair_transforms((250, 250), greyscale=True)(dict(entry))["image"]
    assert rgb.shape == (3, 250, 250) and grey.shape == (1, 250, 250)
    np.testing.assert_allclose(rgb.numpy().transpose(2, 1, 0), photo / 255, atol=1e-6)
    np.testing.assert_allclose(grey[0].numpy().T, (photo @ [0.299, 0.587, 0.114]) / 255, atol=1e-5)


def test_hair_on_off_on_real_faces_with_and_without_hair(real_data):
    root = real_data("lfw_parts")
    entries = {e["case"]: e for e in lfw_datalist(root)}
    for case, has_hair in (("Adam_Scott_0001", False), ("Ted_Turner_0001", True)):
        rgb = read_ppm(Path(entries[case]["label"]))
        hair = int((rgb == (255, 0, 0)).all(axis=-1).sum())
        assert (hair > 0) == has_hair
        on = get_task("lfw").pair_transforms(None, ["face"])(dict(entries[case]))["label"]
        off = get_task("lfw").pair_transforms(None, ["skin"])(dict(entries[case]))["label"]
        assert bool((off <= on).all()) and int((on - off).sum()) == hair


def test_argmax_decoder_ties_and_shape_checks():
    labels = torch.zeros(3, 2, 2)
    labels[1, 0, 0] = 1.0  # skin
    labels[0, 1, 1] = 1.0  # hair; (0, 1) and (1, 0) are all-zero: class 0
    np.testing.assert_array_equal(ArgmaxToLabels([[1]])(labels)[0].numpy(), [[1, 0], [0, 0]])
    np.testing.assert_array_equal(ArgmaxToLabels([[0, 1]])(labels)[0].numpy(), [[1, 1], [1, 1]])
    two = ArgmaxToLabels([[0], [1]])(labels)  # hair, skin: one-hot, background (class 2) first
    np.testing.assert_array_equal(two.argmax(dim=0).numpy(), [[2, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"expected 11 channels .* got shape \(3, 2, 2\)"):
        ArgmaxToLabels([[1]], num_classes=11)(labels)
    with pytest.raises(ValueError, match="exceed the 3 channels"):
        ArgmaxToLabels([[5]])(labels)
    with pytest.raises(ValueError, match="a class is in two labels"):
        ArgmaxToLabels([[0, 1], [1]])


def test_helen_decoder_matches_argmax_of_the_label_images(synthetic):
    entry = helen_datalist(synthetic("helen", n=3))[0]
    stack = np.stack([np.asarray(Image.open(p), float) for p in entry["label"]])  # (11, rows, cols)
    classes = stack.argmax(axis=0)
    assert len(np.unique(classes)) == 11  # every class is drawn
    for labels, face in ((["face"], range(1, 11)), (["skin"], range(1, 10))):
        mask = get_task("helen").pair_transforms(None, labels)(dict(entry))["label"]
        np.testing.assert_array_equal(mask[0].numpy().T, np.isin(classes, list(face)))
    resized = get_task("helen").pair_transforms((250, 250))(dict(entry))
    assert resized["image"].shape == (3, 250, 250) and set(np.unique(resized["label"])) <= {0.0, 1.0}


# ------------------------------------------------------------------ chest X-ray


def test_montgomery_left_and_right_masks_merge(synthetic):
    entry = montgomery_datalist(synthetic("cxr", n=2))[1]
    left, right = (np.asarray(Image.open(p)) > 0 for p in entry["label"])
    assert left.any() and right.any() and not (left & right).any()
    item = get_task("cxr").pair_transforms(None)(dict(entry))
    np.testing.assert_array_equal(item["label"][0].numpy().T, left | right)
    np.testing.assert_allclose(
        item["image"][0].numpy().T, np.asarray(Image.open(entry["image"]), float) / 255, atol=1e-6
    )
    resized = get_task("cxr").pair_transforms((64, 64))(dict(entry))
    assert resized["image"].shape == resized["label"].shape == (1, 64, 64)
    assert set(np.unique(resized["label"])) == {0.0, 1.0}


def test_real_openist_masks_binarised_as_the_readme_says(real_data):
    entries = cxr_datalist(real_data("cxr_openist"), mask_pattern="{stem}@.png")[:5]
    for entry in entries:
        item = get_task("cxr").pair_transforms(None)(dict(entry))
        mask = np.asarray(Image.open(entry["label"]))
        assert item["image"].shape == (1, *mask.shape[::-1])
        np.testing.assert_array_equal(item["label"][0].numpy().T, mask > 127)
        fraction = float((mask > 127).mean())
        assert 0.15 <= fraction <= 0.46  # "lungs cover 15-46 % of an image"


@pytest.mark.parametrize("size", [(500, 403), (512, 512)])
def test_resized_mask_is_the_resized_image_of_it_thresholded_at_half(size, tmp_path):
    """A radiograph equal to its mask: the mask path must land on the image path's pixels (at 500 -> 256 too)."""
    columns, rows = size
    yy, xx = np.mgrid[:rows, :columns]
    mask = (((xx - 0.3 * columns) / 90.0) ** 2 + ((yy - 0.5 * rows) / 170.0) ** 2 < 1) | (
        ((xx - 0.7 * columns) / 80.0) ** 2 + ((yy - 0.45 * rows) / 160.0) ** 2 < 1
    )
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "cxr.png")
    item = get_task("cxr").pair_transforms((256, 256))(
        {"image": str(tmp_path / "cxr.png"), "label": str(tmp_path / "cxr.png")}
    )
    np.testing.assert_array_equal(item["label"].numpy(), (item["image"].numpy() >= 0.5).astype(np.float32))
    if size == (512, 512):  # a whole factor: each output pixel is the mean of a 2x2 block, by hand
        blocks = mask.T.reshape(256, 2, 256, 2).mean(axis=(1, 3))
        np.testing.assert_array_equal(item["label"][0].numpy(), blocks >= 0.5)


def test_png_and_dicom_readers_agree_on_axes(tmp_path):
    array = np.arange(6 * 9, dtype=np.uint8).reshape(6, 9) * 4  # 6 rows, 9 columns, no symmetry
    Image.fromarray(array).save(tmp_path / "a.png")
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.Rows, ds.Columns = array.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = array.astype(np.uint16).tobytes()
    ds.save_as(tmp_path / "a.dcm")
    load = load_imaged("image", image_readers_2d())
    png = load({"image": str(tmp_path / "a.png")})["image"]
    dcm = load({"image": str(tmp_path / "a.dcm")})["image"]
    assert png.shape == dcm.shape == (1, 9, 6)
    np.testing.assert_array_equal(png[0].numpy(), array.T)
    np.testing.assert_array_equal(dcm[0].numpy(), array.T)


@pytest.mark.filterwarnings("ignore:PydicomReader. ImageOrientationPatient")  # radiographs have no patient orientation
def test_dicom_radiograph_scaled_by_its_own_range(synthetic):
    """A 12-bit radiograph through the chest X-ray pipeline (the bundles' and ``medseg infer``'s) is not clipped."""
    entry = cxr_datalist(synthetic("cxr", n=1, layout="dicom"))[0]
    pixels = pydicom.dcmread(entry["image"]).pixel_array.astype(float)
    assert pixels.max() > 255  # 12-bit
    expected = (pixels - pixels.min()) / (pixels.max() - pixels.min())
    image = get_task("cxr").pair_transforms(None)(dict(entry))["image"]
    np.testing.assert_allclose(image[0].numpy().T, expected, atol=1e-6)
    task_image = get_task("cxr").image_transforms(None)({"image": entry["image"]})["image"]
    np.testing.assert_allclose(task_image[0].numpy().T, expected, atol=1e-6)
    assert (expected >= 1.0).mean() < 0.01  # a fixed 0-255 range would have made 9 pixels in 10 white


@pytest.mark.filterwarnings("ignore:PydicomReader. ImageOrientationPatient")
def test_real_radiograph_as_12_bit_dicom_gives_the_network_the_same_input(real_data, tmp_path):
    """A real 8-bit radiograph and the same film stored as 12-bit DICOM (x * 16 + 0..15, as a 12-bit detector
    would give it) reach the network as the same image: within the 16 added levels, i.e. 16 / 4095 of the range."""
    from pydicom.uid import DigitalXRayImageStorageForPresentation, generate_uid

    from medseg.data.synthetic.dicom import write_dicom

    def grey_levels(path: Path) -> np.ndarray:
        return np.asarray(Image.open(path).convert("L")).astype(np.uint16)

    films = sorted(real_data("cxr_openist").glob("*.jpg"))
    # a film that spans the whole 8-bit range, so that x / 255 is also its own range (5 of the 150 do)
    jpeg = next(path for path in films if np.ptp(grey_levels(path)) == 255)
    grey = grey_levels(jpeg)
    twelve = grey * 16 + np.random.default_rng(0).integers(0, 16, grey.shape, dtype=np.uint16)
    dicom = write_dicom(
        tmp_path / "film.dcm", twelve, DigitalXRayImageStorageForPresentation, generate_uid(), bits_stored=12
    )
    pipeline = get_task("cxr").image_transforms((256, 256))
    from_jpeg, from_dicom = (pipeline({"image": str(path)})["image"] for path in (jpeg, dicom))
    assert from_dicom.shape == from_jpeg.shape == (1, 256, 256)
    assert float((from_dicom - from_jpeg).abs().max()) <= 16 / 4095 + 1e-6


def test_16_bit_png_radiograph_scaled_by_its_own_range(tmp_path):
    pixels = np.random.default_rng(0).integers(300, 4000, (12, 9)).astype(np.uint16)
    Image.fromarray(pixels).save(tmp_path / "xray.png")
    image = cxr_image_transforms(spatial_size=None)({"image": str(tmp_path / "xray.png")})["image"]
    np.testing.assert_allclose(image[0].numpy().T, (pixels - pixels.min()) / np.ptp(pixels), atol=1e-6)


def test_grey_levels_8_bit_by_the_full_range_deeper_by_their_own():
    dark = torch.tensor([[[10.0, 100.0], [0.0, 55.0]]])  # 8-bit, never reaching 255: still x / 255
    np.testing.assert_allclose(ScaleGreyLevels()(dark).numpy(), dark.numpy() / 255, atol=1e-7)
    deep = torch.tensor([[[256.0, 1000.0], [4095.0, 2000.0]]])  # 12-bit: (x - 256) / (4095 - 256)
    np.testing.assert_allclose(ScaleGreyLevels()(deep).numpy(), (deep.numpy() - 256) / 3839, atol=1e-7)
    signed = torch.tensor([[[-5.0, 0.0], [5.0, 15.0]]])  # below the 8-bit range: its own range too
    np.testing.assert_allclose(ScaleGreyLevels()(signed).numpy(), (signed.numpy() + 5) / 20, atol=1e-7)


@pytest.mark.filterwarnings("ignore:PydicomReader. ImageOrientationPatient")
def test_monochrome1_radiograph_is_inverted(synthetic, tmp_path):
    entry = cxr_datalist(synthetic("cxr", n=1, layout="dicom"))[0]
    ds = pydicom.dcmread(entry["image"])
    stored = ds.pixel_array.astype(np.uint16)
    ds.PhotometricInterpretation = "MONOCHROME1"  # lowest value shown white
    ds.PixelData = (4095 - stored).astype(np.uint16).tobytes()
    ds.save_as(tmp_path / "inverted.dcm")
    load = load_imaged("image", image_readers_2d())
    original = load({"image": entry["image"]})["image"]
    inverted = load({"image": str(tmp_path / "inverted.dcm")})["image"]
    np.testing.assert_array_equal(original[0].numpy(), stored.T)
    # inverted over the 12 bits stored, as DICOM displays it: 4095 - (4095 - x) = x, whatever the film's own range
    np.testing.assert_array_equal(inverted[0].numpy(), stored.T)


def test_greyscale_matches_pillow():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    grey = ToGreyscale()(torch.as_tensor(rgb.transpose(2, 0, 1)))
    pillow = np.asarray(Image.fromarray(rgb).convert("L"), float)
    assert np.abs(grey[0].numpy() - pillow).max() <= 0.5 + 1e-4  # Pillow rounds to integers
    with pytest.raises(ValueError, match=r"got shape \(2, 3\)"):
        ToGreyscale()(torch.zeros(2, 3))


# ------------------------------------------------------------------ LUNA16 / CT


def _write_mhd(path: Path, array: np.ndarray) -> str:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.7, 2.5))
    sitk.WriteImage(image, str(path))
    return str(path)


def test_luna16_label_mapping(tmp_path):
    labels = np.array([[[0, 3, 4, 5], [5, 4, 3, 0]]], np.uint8)  # (z, y, x) = (1, 2, 4)
    entry = {
        "image": _write_mhd(tmp_path / "scan.mhd", np.zeros(labels.shape, np.int16)),
        "label": _write_mhd(tmp_path / "mask.mhd", labels),
    }
    lungs = get_task("luna16").pair_transforms(None)(dict(entry))["label"]
    assert lungs.dtype == torch.float32 and lungs.shape == (1, 4, 2, 1)
    np.testing.assert_array_equal(lungs[0, :, :, 0].numpy().T, np.isin(labels[0], [3, 4]))  # trachea (5) is background
    left = get_task("luna16").pair_transforms(None, foreground=(3,))(dict(entry))["label"]
    np.testing.assert_array_equal(left[0, :, :, 0].numpy().T, labels[0] == 3)
    assert lung_label_map() == {3: 1, 4: 1, 5: 0}
    assert lung_label_map("luna16", [["left_lung"], ["right_lung"]]) == {3: 1, 4: 2, 5: 0}
    assert lung_label_map("luna16", [["left_lung", "right_lung"], ["trachea"]]) == {3: 1, 4: 1, 5: 2}
    with pytest.raises(ValueError, match=r"must be among .* got \[7\]"):
        lung_label_map("luna16", foreground=(3, 7))
    with pytest.raises(ValueError, match="cip masks have no trachea"):
        lung_label_map("cip", [["trachea"]])


def test_hounsfield_scaling_at_the_window_edges_and_outside(tmp_path):
    hu = np.array([[[-3000, -1025, -1024, 0, 1000, 3072, 3073, 5000]]], np.int16)
    entry = {
        "image": _write_mhd(tmp_path / "scan.mhd", hu),
        "label": _write_mhd(tmp_path / "mask.mhd", np.full(hu.shape, 3, np.uint8)),
    }
    scaled = get_task("luna16").pair_transforms(None)(dict(entry))["image"][0, :, 0, 0].numpy()
    expected = [0.0, 0.0, 0.0, 1024 / 4096, 2024 / 4096, 1.0, 1.0, 1.0]  # clip to [-1024, 3072], then (x + 1024) / 4096
    np.testing.assert_allclose(scaled, expected, atol=1e-7)


def test_ct_preset_on_the_real_volume_and_its_dicom_series(real_data):
    root = real_data("ct_cip")
    volume = get_task("ct").pair_transforms(None)(
        {"image": str(root / "ct-64.nrrd"), "label": str(root / "wholeLung-64.nrrd")}
    )
    series = get_task("ct").pair_transforms(None)(
        {"image": str(root / "ct-64Dicom"), "label": str(root / "wholeLung-64.nrrd")}
    )
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "ct-64.nrrd"))).astype(float)  # (z, y, x)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "wholeLung-64.nrrd")))
    assert volume["image"].shape == (1, 64, 64, 79)
    np.testing.assert_allclose(
        volume["image"][0].numpy().transpose(2, 1, 0), (np.clip(reference, -1024, 3072) + 1024) / 4096, atol=1e-6
    )
    np.testing.assert_array_equal(volume["label"][0].numpy().transpose(2, 1, 0), mask > 0)
    torch.testing.assert_close(series["image"], volume["image"])  # "pixel-identical"
    np.testing.assert_allclose(np.asarray(series["image"].affine), np.asarray(volume["image"].affine), atol=1e-3)
