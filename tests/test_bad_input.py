"""Bad input as a careful user meets it: each class a test, on real files (the shared CT and radiographs, mutated)
or synthetic ones in the real layouts; never a traceback, never a silently wrong output."""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch

from medseg.cli import main
from medseg.pipeline import ModelSettings, build_network
from medseg.tasks import synthesize

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
