"""``medseg infer --rtstruct``: the RT Structure Set read back with pydicom, its contours rasterised here (patient
coordinates to pixels through each referenced image's position, orientation and spacing; scikit-image's polygon
fill) and compared with the mask, on the shared CT series: its own lung mask, and a trained model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from skimage.draw import polygon2mask
from sklearn.metrics import f1_score
from support.tiny_models import train_tiny_model

from medseg.cli import main
from medseg.dicom import check_dicom_series
from medseg.inference import write_rtstruct

pytest.importorskip("rt_utils", reason="rt-utils (medseg's rtstruct extra) is not installed")


def rasterise(path: Path, sources: list[Path]) -> np.ndarray:
    """The contours of the first ROI of the RT Structure Set ``path`` as a mask (x, y, z) over ``sources`` (slice
    order): each contour's points to pixels of the image it references, filled even-odd (holes are contours of
    their own), its border pixels kept (the contour runs through their centres)."""
    images = [pydicom.dcmread(source, stop_before_pixels=True) for source in sources]
    index = {image.SOPInstanceUID: number for number, image in enumerate(images)}
    rows, columns = int(images[0].Rows), int(images[0].Columns)
    frames = np.zeros((len(images), rows, columns), dtype=bool)
    borders = np.zeros_like(frames)
    structure = pydicom.dcmread(path)
    for contour in structure.ROIContourSequence[0].ContourSequence:
        number = index[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
        image = images[number]
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3) - np.asarray(image.ImagePositionPatient)
        orientation = np.asarray(image.ImageOrientationPatient, dtype=float)
        row_spacing, column_spacing = (float(value) for value in image.PixelSpacing)
        column = points @ orientation[:3] / column_spacing  # along a row: the column index
        row = points @ orientation[3:] / row_spacing
        vertices = np.stack([row, column], axis=1)
        if len(vertices) >= 3:  # a contour of one or two pixels has no inside
            frames[number] ^= polygon2mask((rows, columns), vertices)
        # medseg writes every border pixel's centre (no approximation): those pixels are the contour's
        borders[number, np.round(row).astype(int), np.round(column).astype(int)] = True
    return np.moveaxis(frames | borders, 0, -1).transpose(1, 0, 2)  # (slices, rows, columns) -> (x, y, z)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return f1_score(a.ravel(), b.ravel())


def test_the_shared_lung_mask_contoured_and_rasterised_back(real_data, tmp_path):
    ct = real_data("ct_cip")
    sources = check_dicom_series(ct / "ct-64Dicom").files
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(ct / "wholeLung-64.nrrd"))).transpose(2, 1, 0) > 0
    assert lungs.shape[-1] == len(sources)
    path = write_rtstruct(lungs, sources, tmp_path / "lungs_rtstruct.dcm", labels=("lung",))
    structure = pydicom.dcmread(path)
    first = pydicom.dcmread(sources[0], stop_before_pixels=True)
    assert structure.Modality == "RTSTRUCT" and structure.StructureSetROISequence[0].ROIName == "lung"
    assert structure.StudyInstanceUID == first.StudyInstanceUID
    assert structure.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == first.FrameOfReferenceUID
    assert _dice(rasterise(path, sources), lungs) >= 0.98


@pytest.mark.slow
def test_infer_writes_the_contours_of_its_mask_for_a_series_only(real_data, tmp_path):
    ct = real_data("ct_cip")
    train_tiny_model(tmp_path / "model", "ct", [(ct / "ct-64.nrrd", ct / "wholeLung-64.nrrd")])
    out = tmp_path / "out"
    argv = [
        "infer",
        "--model-dir",
        tmp_path / "model",
        "--input",
        ct / "ct-64Dicom",
        ct / "ct-64.nrrd",
        "--output",
        out,
    ]
    assert main([str(arg) for arg in argv] + ["--rtstruct"]) == 0
    records = {record["case"]: record for record in json.loads((out / "summary.json").read_text())["cases"]}
    assert records["ct-64"]["warnings"] == ["no RT Structure Set: the input is not a DICOM series"]
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ct-64Dicom_seg.nii.gz"))).transpose(2, 1, 0) > 0
    assert 0.05 < mask.mean() < 0.5  # a trained model's lungs, not noise
    sources = check_dicom_series(ct / "ct-64Dicom").files
    assert _dice(rasterise(Path(records["ct-64Dicom"]["outputs"]["rtstruct"]), sources), mask) >= 0.98
