"""Orientation and colour the readers used to ignore (issue 32, class 2), on the shared real radiographs and CT
turned into awkward but legal inputs: EXIF-tagged and CMYK JPEGs, grey+alpha PNGs, NIfTI volumes with permuted
axes or disagreeing qform and sform, DICOM radiographs that need the display pipeline, and areas without a spacing.

References are independent of medseg: the pixels Pillow decodes turned by NumPy as the EXIF tag says, the NIfTI
affines nibabel reads and its orientation utilities, pydicom's display pipeline and the DICOM windowing formula by
hand, and pixel counts made here with NumPy.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.uid import DigitalXRayImageStorageForPresentation, generate_uid
from support import shared_data_root

from medseg.cli import main
from medseg.data.synthetic.dicom import write_dicom
from medseg.pipeline import ModelSettings, build_network
from medseg.tasks import get_task

#: EXIF Orientation -> the NumPy operation that turns the stored (rows, columns) pixels into the displayed ones
#: (EXIF 2.32, Orientation: 1 as stored, 2 mirrored, 3 turned half round, 6 and 8 turned a quarter, 5 and 7 transposed).
DISPLAY = {
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: np.transpose,
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).T,
    8: lambda a: np.rot90(a, 1),
}
#: ... and the operation that stores a displayed image so that the tag shows it as it is (the inverse of each).
STORE = {
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: np.transpose,
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(a, 2).T,
    8: lambda a: np.rot90(a, -1),
}


def data(name: str) -> Path:
    root = shared_data_root() / name
    if not root.is_dir():
        pytest.skip(f"real data subset {name} not found at {root} (set MEDSEG_SHARED_DATA to its folder)")
    return root


def medseg(*argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as exit:
        return exit.code


def checkpoint(folder: Path, task: str) -> Path:
    """An untrained tiny U-Net with its settings (the same deterministic network for every input)."""
    torch.manual_seed(0)
    settings = ModelSettings(task=task, network_name="unet2d", network_kwargs={"features": [4, 8, 16]},
                             spatial_size=(32, 32))  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(build_network(settings).state_dict(), folder / "model.pt")
    settings.save(folder)
    return folder / "model.pt"


def grey(path: Path) -> np.ndarray:
    """The 8-bit grey levels Pillow decodes, (rows, columns)."""
    return np.asarray(Image.open(path).convert("L"))


def read_2d(path: Path) -> np.ndarray:
    """The image the chest X-ray task's network is given, at its own size, as (rows, columns) in [0, 1]."""
    return get_task("cxr").image_transforms(None)({"image": str(path)})["image"][0].numpy().T


def summary(out: Path) -> dict:
    return {record["case"]: record for record in json.loads((out / "summary.json").read_text())["cases"]}


def radiograph() -> Path:
    """A real radiograph 500 wide and about 400 tall: a quarter turn changes its grid."""
    return sorted(data("cxr_openist").glob("*.jpg"))[0]


# ------------------------------------------------------------------ EXIF orientation


def tagged_jpeg(displayed: np.ndarray, orientation: int, path: Path) -> Path:
    """A JPEG whose pixels are ``displayed`` stored as a camera would store them for ``orientation``, with the tag."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(STORE[orientation](displayed))).save(path, quality=95, exif=exif)
    return path


@pytest.mark.parametrize("orientation", sorted(DISPLAY))
def test_an_exif_oriented_jpeg_is_read_as_displayed(orientation, tmp_path):
    """Whatever the tag, the image the network sees is the stored pixels turned as the tag says (NumPy on Pillow's
    decoded pixels), which is the original radiograph up to the JPEG's recompression."""
    original = grey(radiograph())
    path = tagged_jpeg(original, orientation, tmp_path / "film.jpg")
    expected = DISPLAY[orientation](grey(path)) / 255.0  # the stored pixels, as decoded, turned by hand
    assert expected.shape == original.shape
    np.testing.assert_allclose(read_2d(path), expected, atol=1e-6)
    assert np.abs(expected - original / 255.0).mean() < 0.01  # displayed = the original film


@pytest.mark.parametrize("source", ["cxr_shenzhen", "cxr_openist"])
def test_an_exif_rotated_radiograph_gets_the_mask_of_its_displayed_image(source, tmp_path):
    """A real radiograph stored turned a quarter (tag 6: a phone's photograph of a film) is segmented as displayed:
    the mask lies on the displayed grid and equals the mask of the same displayed pixels saved without a tag (and
    differs from the mask of the pixels as stored, what was segmented before)."""
    image = (sorted((data(source) / "images").glob("*.jpg")) if source == "cxr_shenzhen" else [radiograph()])[0]
    (tmp_path / "in").mkdir()
    tagged = tagged_jpeg(grey(image), 6, tmp_path / "in" / "tagged.jpg")
    displayed = DISPLAY[6](grey(tagged))
    Image.fromarray(np.ascontiguousarray(displayed)).save(tmp_path / "in" / "plain.png")  # lossless: same pixels
    Image.fromarray(grey(tagged)).save(tmp_path / "in" / "stored.png")  # the pixels as stored, read before
    model, out = checkpoint(tmp_path / "model", "cxr"), tmp_path / "out"
    assert medseg("infer", "--checkpoint", model, "--input", tmp_path / "in", "--output", out, "--probabilities") == 0
    masks = {name: nib.load(out / f"{name}_seg.nii.gz").get_fdata() for name in ("tagged", "plain")}
    assert masks["tagged"].shape == displayed.shape[::-1]  # (x, y) of the displayed image
    np.testing.assert_array_equal(masks["tagged"], masks["plain"])
    maps = [nib.load(out / f"{name}_prob.nii.gz").get_fdata() for name in ("tagged", "plain")]
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-6)
    stored = nib.load(out / "stored_prob.nii.gz").get_fdata()
    assert stored.shape != maps[0].shape or np.abs(stored - maps[0]).max() > 1e-4  # read as stored, it would differ


# ------------------------------------------------------------------ CMYK, grey + alpha


def test_a_cmyk_jpeg_is_read_in_its_colours(tmp_path):
    """A radiograph saved as a CMYK JPEG reaches the network as its grey levels, not as C, M, Y taken for R, G, B
    (which gives about 1 - grey: the ink covers where the film is dark)."""
    original = grey(radiograph()) / 255.0
    path = tmp_path / "cmyk.jpg"
    Image.open(radiograph()).convert("RGB").convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    assert np.abs(read_2d(path) - original).mean() < 0.02
    inks = np.asarray(Image.open(path), dtype=float)[..., :3] @ [0.299, 0.587, 0.114] / 255  # C, M, Y as R, G, B
    assert np.abs(inks - original).mean() > 0.3  # what the reader gave before: far from the film


def test_a_grey_alpha_png_is_read_as_grey_and_segmented(tmp_path):
    """A grey+alpha PNG (mode LA) is read as its grey channel and its mask written on its grid (SimpleITK, which
    wrote the grid before, cannot read its header)."""
    levels = grey(radiograph())
    alpha = np.full(levels.shape, 200, np.uint8)
    path = tmp_path / "in" / "film.png"
    path.parent.mkdir()
    Image.fromarray(np.stack([levels, alpha], axis=-1), mode="LA").save(path)
    np.testing.assert_allclose(read_2d(path), levels / 255.0, atol=1e-6)
    out = tmp_path / "out"
    assert medseg("infer", "--checkpoint", checkpoint(tmp_path / "model", "cxr"), "--input", path, "--output", out) == 0
    assert nib.load(out / "film_seg.nii.gz").shape == levels.shape[::-1]


def test_a_bilevel_png_is_read_black_and_white(tmp_path):
    """A black-and-white (1-bit) PNG of a radiograph is read as 0 and 1 (white), not as 0 and 1/255."""
    white = grey(radiograph()) > 127
    Image.fromarray(white).save(tmp_path / "film.png")
    assert Image.open(tmp_path / "film.png").mode == "1"
    np.testing.assert_array_equal(read_2d(tmp_path / "film.png"), white.astype(float))


# ------------------------------------------------------------------ areas without a spacing


def test_areas_are_in_pixels_without_a_spacing_and_in_mm2_with_one(tmp_path):
    """A JPEG (and a DICOM radiograph without a pixel spacing) reports its area in pixels only; the same film as
    DICOM with ImagerPixelSpacing 0.2 x 0.3 mm reports pixels x 0.06 mm²."""
    levels = grey(radiograph()).astype(np.uint16)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(levels.astype(np.uint8)).save(inputs / "film.png")
    write_dicom(inputs / "spaced.dcm", levels, DigitalXRayImageStorageForPresentation, generate_uid(), 8,
                ImagerPixelSpacing=[0.2, 0.3])  # fmt: skip
    write_dicom(inputs / "unspaced.dcm", levels, DigitalXRayImageStorageForPresentation, generate_uid(), 8)
    out = tmp_path / "out"
    model = checkpoint(tmp_path / "model", "cxr")
    assert medseg("infer", "--checkpoint", model, "--input", inputs, "--output", out, "--threshold", "otsu") == 0
    records = summary(out)
    for name in ("film", "spaced", "unspaced"):
        mask = nib.load(out / f"{name}_seg.nii.gz").get_fdata()
        assert records[name]["foreground_pixels"] == int(np.count_nonzero(mask)) > 0
    assert "foreground_mm2" not in records["film"] and "foreground_mm2" not in records["unspaced"]
    assert records["spaced"]["foreground_mm2"] == pytest.approx(records["spaced"]["foreground_pixels"] * 0.06)


# ------------------------------------------------------------------ DICOM display pipeline


def dicom_film(path: Path, pixels: np.ndarray, bits: int, **attributes) -> Path:
    """``pixels`` as a Digital X-Ray DICOM file of ``bits`` bits stored, with ``attributes`` (keyword: value)."""
    photometric = attributes.pop("PhotometricInterpretation", "MONOCHROME2")
    write_dicom(path, pixels, DigitalXRayImageStorageForPresentation, generate_uid(), bits, **attributes)
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = photometric
    ds.save_as(path)
    return path


@pytest.mark.filterwarnings("ignore:PydicomReader. ImageOrientationPatient")
def test_an_under_exposed_monochrome1_film_is_inverted_over_its_stored_bits(tmp_path):
    """An under-exposed film (grey levels halved) stored MONOCHROME1 in 8 bits, ``255 - g // 2``, is displayed as
    ``g // 2``: inverted over the 8 bits stored, not about its own minimum and maximum (which would add about 128)."""
    halved = grey(radiograph()).astype(np.uint16) // 2
    path = dicom_film(tmp_path / "dark.dcm", 255 - halved, 8, PhotometricInterpretation="MONOCHROME1")
    np.testing.assert_allclose(read_2d(path), halved / 255.0, atol=1e-6)


@pytest.mark.filterwarnings("ignore:PydicomReader. ImageOrientationPatient")
def test_a_deep_monochrome1_film_within_8_bit_values_is_not_taken_for_an_8_bit_one(tmp_path):
    """A 12-bit MONOCHROME1 film whose displayed values, ``4095 - stored``, all fall within 0-255 is scaled by its
    own range as 12-bit films are (the values would otherwise be read as a dark 8-bit image, x / 255)."""
    halved = grey(radiograph()).astype(np.uint16) // 2
    path = dicom_film(tmp_path / "dark.dcm", 4095 - halved, 12, PhotometricInterpretation="MONOCHROME1")
    expected = (halved - halved.min()) / np.ptp(halved)
    np.testing.assert_allclose(read_2d(path), expected, atol=1e-6)


@pytest.mark.filterwarnings("ignore:PydicomReader. ImageOrientationPatient")
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_a_narrow_window_is_applied_as_dicom_displays_it(photometric, tmp_path):
    """A 12-bit film with WindowCenter 2048 and WindowWidth 1024 is shown through that window (the DICOM LINEAR
    formula by hand, PS3.3 C.11.2.1.2, and pydicom's ``apply_voi_lut``), then, for MONOCHROME1, inverted over the
    12-bit output range; not scaled from the film's own range as if there were no window."""
    levels = grey(radiograph()).astype(np.float64)
    stored = (levels * 16 + np.random.default_rng(0).integers(0, 16, levels.shape)).astype(np.uint16)
    path = dicom_film(tmp_path / "windowed.dcm", stored, 12, WindowCenter=2048, WindowWidth=1024,
                      PhotometricInterpretation=photometric)  # fmt: skip
    center, width, top = 2048.0, 1024.0, 4095.0
    by_hand = np.clip(((stored - (center - 0.5)) / (width - 1) + 0.5) * top, 0, top)
    ds = pydicom.dcmread(path)
    np.testing.assert_allclose(pydicom.pixels.apply_voi_lut(ds.pixel_array, ds), by_hand, atol=1e-6)
    shown = top - by_hand if photometric == "MONOCHROME1" else by_hand
    np.testing.assert_allclose(read_2d(path), shown / top, atol=1e-6)
    assert (shown == 0).mean() > 0.01 and (shown == top).mean() > 0.01  # the window clips both ends


# ------------------------------------------------------------------ NIfTI axes and transforms


def ct_slab(tmp_path: Path, slices: int = 12) -> tuple[np.ndarray, np.ndarray, Path]:
    """The first ``slices`` axial slices of a real ``ct_imlab`` scan (LAS, axial last), its affine, and the copy."""
    scan = nib.load(sorted(data("ct_imlab").glob("*-128x128x64.nii.gz"))[0])
    array = np.asarray(scan.dataobj, dtype=np.float32)[..., 20 : 20 + slices]
    affine = scan.affine.copy()
    affine[:3, 3] += affine[:3, 2] * 20  # the slab's first slice is the scan's 21st
    path = tmp_path / "in" / "original.nii.gz"
    path.parent.mkdir(exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)
    return array, affine, path


def stored_as(array: np.ndarray, affine: np.ndarray, order: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The same anatomy with its array axes in ``order`` (new axis k = old axis order[k]) and the affine's columns
    permuted alike: every voxel keeps its world position."""
    permuted = affine.copy()
    permuted[:3, :3] = affine[:3, list(order)]
    return np.ascontiguousarray(np.transpose(array, order)), permuted


def in_original_axes(volume: nib.Nifti1Image, reference: nib.Nifti1Image) -> np.ndarray:
    """``volume``'s voxels in ``reference``'s array order, by nibabel's orientation utilities (axis permutations and
    flips only, the grids being the same in world space)."""
    transform = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(volume.affine), nib.orientations.io_orientation(reference.affine)
    )
    return nib.orientations.apply_orientation(np.asarray(volume.dataobj), transform)


@pytest.mark.parametrize("order", [(2, 0, 1), (1, 2, 0), (0, 2, 1), (2, 1, 0)])
def test_a_nifti_with_permuted_axes_gets_the_same_mask_in_world_space(order, tmp_path):
    """The real CT stored with its array axes permuted (and a matching affine) is sliced along its axial direction:
    its probability map and mask, written on its own grid, are the original's voxel for voxel in world space."""
    array, affine, original = ct_slab(tmp_path)
    permuted_array, permuted_affine = stored_as(array, affine, order)
    nib.save(nib.Nifti1Image(permuted_array, permuted_affine), tmp_path / "in" / "permuted.nii.gz")
    out = tmp_path / "out"
    model = checkpoint(tmp_path / "model", "ct")
    flags = ["--probabilities", "--threshold", "otsu"]  # an untrained network: a mask of both values by Otsu's
    assert medseg("infer", "--checkpoint", model, "--input", tmp_path / "in", "--output", out, *flags) == 0
    reference = nib.load(original)
    for kind in ("prob", "seg"):
        made = np.asarray(nib.load(out / f"original_{kind}.nii.gz").dataobj)
        turned = nib.load(out / f"permuted_{kind}.nii.gz")
        assert turned.shape == permuted_array.shape  # on the input's own grid
        np.testing.assert_allclose(turned.affine, permuted_affine, atol=1e-4)
        np.testing.assert_allclose(in_original_axes(turned, reference), made, atol=1e-5)
        assert np.ptp(made) > 0  # the output depends on the slices the network is given: a wrong slicing would show


def test_a_nifti_whose_qform_and_sform_disagree_gets_the_sform(tmp_path):
    """A NIfTI whose sform (code 2) lies 10, 20, 30 mm off its qform (code 1): the mask carries the affine nibabel
    reads for the input (the sform, by the NIfTI rule), and the voxels are those of the consistent file."""
    array, affine, _ = ct_slab(tmp_path)  # also writes the consistent file, original.nii.gz
    shifted = affine.copy()
    shifted[:3, 3] += [10.0, 20.0, 30.0]
    both = nib.Nifti1Image(array, None)
    both.set_qform(affine, code=1)
    both.set_sform(shifted, code=2)
    nib.save(both, tmp_path / "in" / "both.nii.gz")
    assert np.allclose(nib.load(tmp_path / "in" / "both.nii.gz").affine, shifted)  # nibabel: the sform
    out = tmp_path / "out"
    model = checkpoint(tmp_path / "model", "ct")
    assert medseg("infer", "--checkpoint", model, "--input", tmp_path / "in", "--output", out) == 0
    mask = nib.load(out / "both_seg.nii.gz")
    np.testing.assert_allclose(mask.affine, shifted, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(mask.dataobj), np.asarray(nib.load(out / "original_seg.nii.gz").dataobj))


def test_a_nifti_with_a_sheared_sform_is_refused_naming_both_transforms(tmp_path):
    """A sheared sform cannot be a mask's grid (spacings and a rotation): the case fails, naming both transforms."""
    array, affine, _ = ct_slab(tmp_path)
    sheared = affine.copy()
    sheared[0, 1] = 1.5
    image = nib.Nifti1Image(array, None)
    image.set_qform(affine, code=1)
    image.set_sform(sheared, code=2)
    path = tmp_path / "sheared.nii.gz"
    nib.save(image, path)
    out = tmp_path / "out"
    assert medseg("infer", "--checkpoint", checkpoint(tmp_path / "model", "ct"), "--input", path, "--output", out) == 1
    error = summary(out)["sheared"]["error"]
    assert str(path) in error and "sform (code 2)" in error and "qform (code 1)" in error and "sheared" in error
    assert not (out / "sheared_seg.nii.gz").exists()
