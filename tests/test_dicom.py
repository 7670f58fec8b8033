"""DICOM series checked before ITK reads them (:mod:`medseg.dicom`, :class:`medseg.transforms.VolumeReader`).

References are independent of the code under test: pydicom's own reading of the headers, the series' NRRD twin
read by SimpleITK, and file names chosen by each case.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless, generate_uid
from support.dicom_mutants import claim_transfer_syntax

from medseg.cli import main
from medseg.dicom import DicomError, check_dicom_file, check_dicom_series
from medseg.transforms import ct_image_transforms

FIRST, LAST = 30, 35  # IMG0030.dcm ... IMG0035.dcm


@pytest.fixture()
def series(real_data, tmp_path) -> Path:
    """Six consecutive slices of the real ``ct-64Dicom`` series, writable copies."""
    folder = tmp_path / "series"
    folder.mkdir()
    for k in range(FIRST, LAST + 1):
        shutil.copyfile(real_data("ct_cip") / "ct-64Dicom" / f"IMG{k:04d}.dcm", folder / f"IMG{k:04d}.dcm")
    return folder


def _cause(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first error of ``kind`` in the chain of causes (MONAI wraps a reader's error in its transforms')."""
    while error is not None and not isinstance(error, kind):
        error = error.__cause__
    return error


def _edit(path: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def _set(keyword: str, value) -> Callable[[pydicom.Dataset], None]:
    return lambda ds: setattr(ds, keyword, value)


def test_the_real_series_is_described_as_pydicom_and_its_nrrd_twin_see_it(real_data):
    root = real_data("ct_cip")
    info = check_dicom_series(root / "ct-64Dicom")
    headers = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in (root / "ct-64Dicom").glob("*.dcm")}
    by_z = sorted(headers, key=lambda p: float(headers[p].ImagePositionPatient[2]))  # axial: the normal is z
    assert list(info.files) == by_z and len(info.files) == 79
    nrrd = sitk.ReadImage(str(root / "ct-64.nrrd"))
    assert info.size == nrrd.GetSize() == (64, 64, 79)
    np.testing.assert_allclose(info.spacing, nrrd.GetSpacing(), rtol=1e-3)
    np.testing.assert_allclose(info.origin, nrrd.GetOrigin(), atol=1e-3)
    first = headers[by_z[0]]
    assert info.series_uid == first.SeriesInstanceUID and info.frame_of_reference_uid == first.FrameOfReferenceUID
    assert np.diff(info.positions) == pytest.approx(np.full(78, 3.987), abs=2e-3)


def test_hidden_files_dicomdir_and_subfolders_are_not_slices(series):
    (series / ".DS_Store").write_bytes(b"\0\1")
    (series / "DICOMDIR").write_bytes(b"not a slice")
    (series / "sub").mkdir()
    (series / "sub" / "x.txt").write_text("x")
    assert [p.name for p in check_dicom_series(series).files] == [f"IMG{k:04d}.dcm" for k in range(FIRST, LAST + 1)]


def _truncate_pixels(series: Path) -> None:
    data = (series / "IMG0032.dcm").read_bytes()
    (series / "IMG0032.dcm").write_bytes(data[: len(data) - 1000])


def _missing(series: Path) -> None:
    (series / "IMG0032.dcm").unlink()


def _duplicate(series: Path) -> None:
    shutil.copyfile(series / "IMG0032.dcm", series / "IMG0032b.dcm")


def _moved(series: Path) -> None:
    def move(ds):
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(ds.ImagePositionPatient[2]) + 1.5]

    _edit(series / "IMG0032.dcm", move)


def _rows_and_columns(series: Path) -> None:  # 32 x 128 pixels: as many bytes as 64 x 64
    _edit(series / "IMG0032.dcm", lambda ds: (setattr(ds, "Rows", 32), setattr(ds, "Columns", 128)))


def _explicit_vr_with(path: Path, keyword: str, vr: str) -> None:
    """Re-encode ``path`` as explicit VR little endian with ``keyword`` declared with the wrong ``vr``."""
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, implicit_vr=False, little_endian=True)
    data = bytearray(path.read_bytes())
    tag = ds[keyword].tag
    at = data.find(tag.group.to_bytes(2, "little") + tag.element.to_bytes(2, "little") + ds[keyword].VR.encode(), 132)
    data[at + 4 : at + 6] = vr.encode()
    path.write_bytes(bytes(data))


# one row per defect: how the series is broken -> what the message says (it always names the file)
CASES = {
    "truncated pixel data": (_truncate_pixels, r"IMG0032\.dcm: truncated file: PixelData"),
    "empty file": (lambda s: (s / "IMG0032.dcm").write_bytes(b""), r"IMG0032\.dcm: empty file"),
    "not DICOM": (lambda s: (s / "IMG0032.dcm").write_text("hello"), r"IMG0032\.dcm: not a DICOM file"),
    "missing slice": (_missing, r"1 missing slice\(s\) between IMG0031\.dcm and IMG0033\.dcm"),
    "duplicated slice": (_duplicate, r"IMG0032\.dcm and IMG0032b\.dcm lie at the same slice position"),
    "moved slice": (_moved, r"uneven slice spacing between IMG0031\.dcm and IMG0032\.dcm"),
    "another series": (
        lambda s: _edit(s / "IMG0032.dcm", _set("SeriesInstanceUID", generate_uid())),
        r"2 series in one folder: .*\(1 file\(s\): IMG0032\.dcm\)",
    ),
    "other rows and columns": (_rows_and_columns, r"IMG0032\.dcm: Rows 32 differs from the series' 64 \(5 of 6"),
    "other pixel spacing": (
        lambda s: _edit(s / "IMG0032.dcm", _set("PixelSpacing", [1.0, 1.0])),
        r"IMG0032\.dcm: PixelSpacing \(1\.0, 1\.0\) differs",
    ),
    "other orientation": (
        lambda s: _edit(s / "IMG0032.dcm", _set("ImageOrientationPatient", [0, 1, 0, 1, 0, 0])),
        r"IMG0032\.dcm: ImageOrientationPatient .* differs",
    ),
    "no position": (
        lambda s: _edit(s / "IMG0032.dcm", lambda ds: ds.__delattr__("ImagePositionPatient")),
        r"IMG0032\.dcm: no ImagePositionPatient",
    ),
    "wrong bits allocated": (
        lambda s: _edit(s / "IMG0032.dcm", _set("BitsAllocated", 8)),
        r"IMG0032\.dcm: pixel data of 8192 bytes, but .* BitsAllocated 8 make 4096",
    ),
    "lying transfer syntax": (
        lambda s: claim_transfer_syntax(s / "IMG0032.dcm", JPEGBaseline8Bit),
        r"IMG0032\.dcm: transfer syntax JPEG Baseline .* pixel data is not encapsulated",
    ),
    "text where a number goes": (
        lambda s: _explicit_vr_with(s / "IMG0032.dcm", "Rows", "SH"),
        r"IMG0032\.dcm: invalid Rows",
    ),
    "two bad files": (
        lambda s: ((s / "IMG0031.dcm").write_bytes(b""), (s / "IMG0034.dcm").write_bytes(b"")),
        r"IMG0031\.dcm: empty file \(and 1 more bad file\(s\): IMG0034\.dcm\)",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_series_is_refused_naming_the_file(series, case):
    break_series, message = CASES[case]
    check_dicom_series(series)  # valid before
    break_series(series)
    with pytest.raises(DicomError, match=message):
        check_dicom_series(series)
    with pytest.raises(RuntimeError) as raised:  # the reader of every CT pipeline checks first
        ct_image_transforms()({"image": str(series)})
    assert re.search(message, str(_cause(raised.value, DicomError)))


def test_an_empty_folder_and_a_file_are_no_series(tmp_path):
    with pytest.raises(DicomError, match="no file in the series folder"):
        check_dicom_series(tmp_path)
    (tmp_path / "a.dcm").write_bytes(b"x")
    with pytest.raises(DicomError, match="not a folder"):
        check_dicom_series(tmp_path / "a.dcm")


def test_a_compressed_series_is_read_and_its_truncation_found(series, tmp_path):
    """RLE (pydicom encodes it without plugins): read voxel for voxel as the uncompressed slices."""
    plain = ct_image_transforms()({"image": str(series)})["image"]
    compressed = tmp_path / "rle"
    compressed.mkdir()
    for path in sorted(series.iterdir()):
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless)
        ds.save_as(compressed / path.name)
    assert check_dicom_series(compressed).size == (64, 64, LAST - FIRST + 1)
    image = ct_image_transforms()({"image": str(compressed)})["image"]
    assert bool((image == plain).all()) and np.allclose(image.affine, plain.affine)
    data = (compressed / "IMG0033.dcm").read_bytes()
    (compressed / "IMG0033.dcm").write_bytes(data[:-100])
    with pytest.raises(DicomError, match=r"IMG0033\.dcm: truncated file: End of file"):
        check_dicom_series(compressed)


def test_a_file_pydicom_reads_but_itk_cannot_is_named(series):
    """RescaleSlope declared as a date: pydicom reads the text, GDCM refuses the VR; each file is then tried alone."""
    _explicit_vr_with(series / "IMG0033.dcm", "RescaleSlope", "DA")
    check_dicom_series(series)  # nothing pydicom sees is wrong
    with pytest.raises(RuntimeError) as raised:
        ct_image_transforms()({"image": str(series)})
    assert re.search(r"IMG0033\.dcm: ITK cannot read it", str(_cause(raised.value, DicomError)))


def test_a_radiograph_file_is_checked_on_its_own(synthetic, tmp_path):
    path = tmp_path / "radiograph.dcm"  # a copy: the synthetic data set is shared by the session
    shutil.copyfile(next((synthetic("cxr", n=1, layout="dicom") / "images").glob("*.dcm")), path)
    assert check_dicom_file(path).Modality == pydicom.dcmread(path).Modality
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(DicomError, match=r"truncated file: PixelData"):
        check_dicom_file(path)


def test_prepare_names_the_truncated_slice_instead_of_loading_78(real_data, tmp_path):
    """The issue's case: one slice of the 79 cut short. MONAI's ITKReader (GDCM's series grouping) read 78 slices
    and prepare reported only "size mismatch: image (64, 64, 78) vs mask (64, 64, 79)"."""
    root = tmp_path / "cip"
    shutil.copytree(real_data("ct_cip") / "ct-64Dicom", root / "ct-64Dicom", copy_function=shutil.copyfile)
    shutil.copyfile(real_data("ct_cip") / "wholeLung-64.nrrd", root / "wholeLung-64.nrrd")
    data = (root / "ct-64Dicom" / "IMG0040.dcm").read_bytes()
    (root / "ct-64Dicom" / "IMG0040.dcm").write_bytes(data[:5000])
    out = tmp_path / "out" / "ct.json"
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["prepare", "--task", "ct", "--data-root", str(root), "--out", str(out), "--folds", "0",
                     "--image-pattern", "ct-{id}Dicom", "--mask-pattern", "wholeLung-{id}.nrrd"])  # fmt: skip
    assert code == 1
    assert f"{root / 'ct-64Dicom' / 'IMG0040.dcm'}: truncated file: PixelData" in err.getvalue()
    assert "size mismatch" not in err.getvalue() and not out.parent.exists()
