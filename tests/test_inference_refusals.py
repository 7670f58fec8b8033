"""What ``medseg infer`` refuses, in one line naming the file, instead of a wrong or endless output: an RT Structure
Set of an anonymised CT series (UIDs emptied) or of slices that share a UID, one of a mask in thousands of pieces,
and a symbolic link loop among the inputs; on the shared CT series and radiographs."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage
from support.tiny_models import train_tiny_model

from medseg.cli import main
from medseg.dicom import check_dicom_series
from medseg.inference import InputError, find_cases, write_rtstruct
from medseg.inference.outputs import DicomSegError

pytest.importorskip("rt_utils", reason="rt-utils (medseg's rtstruct extra) is not installed")


def _series(real_data, folder: Path) -> tuple[list[Path], np.ndarray]:
    """A copy of the shared CT series in ``folder`` (slice order) and its lung mask (x, y, z)."""
    ct = real_data("ct_cip")
    shutil.copytree(ct / "ct-64Dicom", folder)
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(ct / "wholeLung-64.nrrd"))).transpose(2, 1, 0) > 0
    return check_dicom_series(folder).files, lungs


def _edit(sources: list[Path], change) -> None:
    for index, path in enumerate(sources):
        dataset = pydicom.dcmread(path)
        change(index, dataset)
        dataset.save_as(path)


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"])
def test_no_rtstruct_of_an_anonymised_series(real_data, tmp_path, keyword):
    sources, lungs = _series(real_data, tmp_path / "series")
    _edit(sources, lambda index, dataset: setattr(dataset, keyword, ""))
    target = tmp_path / "rtstruct.dcm"
    with pytest.raises(DicomSegError) as refused:
        write_rtstruct(lungs, sources, target)
    assert str(refused.value) == (
        f"{sources[0]}: no RT Structure Set: the source has no {keyword} for the contours to reference "
        "(anonymised? the mask is written as NIfTI)"
    )
    assert not target.exists()


def test_no_rtstruct_of_slices_that_share_a_uid(real_data, tmp_path):
    """Two slices of one SOP Instance UID: which contours are whose cannot be told, so none are written."""
    sources, lungs = _series(real_data, tmp_path / "series")
    shared = pydicom.dcmread(sources[10], stop_before_pixels=True).SOPInstanceUID
    _edit(sources[30:31], lambda index, dataset: setattr(dataset, "SOPInstanceUID", shared))
    with pytest.raises(DicomSegError, match=f"{sources[30]}: no RT Structure Set: its SOPInstanceUID {shared} is "
                       f"also {sources[10]}'s"):  # fmt: skip
        write_rtstruct(lungs, sources, tmp_path / "rtstruct.dcm")


def test_each_slice_gets_its_own_contours(real_data, tmp_path):
    """A mask of one square on one slice only: the structure set has contours on that slice's image and no other."""
    sources, lungs = _series(real_data, tmp_path / "series")
    mask = np.zeros_like(lungs)
    mask[20:30, 20:30, 40] = True
    structure = pydicom.dcmread(write_rtstruct(mask, sources, tmp_path / "rtstruct.dcm"))
    referenced = {contour.ContourImageSequence[0].ReferencedSOPInstanceUID
                  for contour in structure.ROIContourSequence[0].ContourSequence}  # fmt: skip
    assert referenced == {pydicom.dcmread(sources[40], stop_before_pixels=True).SOPInstanceUID}


def test_a_mask_in_thousands_of_pieces_is_refused_at_once(real_data, tmp_path):
    """Every other voxel of every other row of the lungs: isolated pixels, each a contour of its own (scipy counts
    them). rt-utils would take minutes; the refusal comes in seconds and says how many."""
    sources, lungs = _series(real_data, tmp_path / "series")
    pieces = lungs.copy()
    pieces[1::2] = False
    pieces[:, 1::2] = False
    counts = [ndimage.label(pieces[..., z], structure=np.ones((3, 3)))[1] for z in range(pieces.shape[-1])]
    assert sum(counts) > 10_000
    worst = int(np.argmax(counts))
    start = time.monotonic()
    with pytest.raises(DicomSegError) as refused:
        write_rtstruct(pieces, sources, tmp_path / "rtstruct.dcm")
    assert time.monotonic() - start < 20
    assert str(refused.value).startswith(
        f"{sources[0]}: no RT Structure Set: the mask has {sum(counts):,} contours ({counts[worst]:,} on slice "
        f"{worst + 1}), more than the 10,000"
    ), refused.value


def test_a_symbolic_link_loop_is_named_as_one(real_data, tmp_path):
    """In a folder of inputs: links in a loop (one to itself, two to each other) and a link to nothing each fail
    with that reason, the radiograph beside them is segmented; given by name, a loop is a usage error saying so."""
    radiograph = sorted(real_data("cxr_openist").glob("*.jpg"))[0]
    mask = radiograph.with_name(f"{radiograph.stem}@.png")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(radiograph, inputs / "chest.jpg")
    os.symlink("self.png", inputs / "self.png")
    os.symlink("second", inputs / "first")
    os.symlink("first", inputs / "second")
    os.symlink("gone.jpg", inputs / "dangling.jpg")
    expected = {"self": "symbolic link loop", "first": "symbolic link loop", "second": "symbolic link loop",
                "dangling": "a link to nothing: gone.jpg"}  # fmt: skip
    cases = {case.name: case.problem for case in find_cases([inputs], volumetric=False)}
    assert cases == {"chest": None, **expected}
    with pytest.raises(InputError, match=f"^{inputs / 'self.png'}: symbolic link loop$"):
        find_cases([inputs / "self.png"])

    train_tiny_model(tmp_path / "model", "cxr", [(radiograph, mask)], steps=2)
    out = tmp_path / "out"
    assert main(["infer", "--model-dir", str(tmp_path / "model"), "--input", str(inputs), "--output", str(out)]) == 1
    summary = json.loads((out / "summary.json").read_text())
    records = {record["case"]: record for record in summary["cases"]}
    assert records["chest"]["status"] == "ok"
    for name, reason in expected.items():
        assert records[name]["status"] == "failed" and records[name]["error"].endswith(f": {reason}"), records[name]
    assert _usage_error(["infer", "--model-dir", str(tmp_path / "model"), "--input", str(inputs / "first"),
                                "--output", str(tmp_path / "o2")])  # fmt: skip


def _usage_error(arguments: list[str]) -> bool:
    try:
        return main(arguments) == 2
    except SystemExit as exit:
        return exit.code == 2
