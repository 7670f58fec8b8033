"""Fuzzing ``medseg infer`` with mutants of real image files: the shared CT (as NIfTI and NRRD) and a real radiograph
(as PNG), each cut short, emptied, its bytes flipped, re-saved as a palette image, given NaN voxels, a fourth
dimension or a singular affine, or replaced by a FIFO.

Every mutant is a case of one batch. Each must end in one of two ways: failed, with a one-line reason that names its
file; or ok, with the mask the unmutated file gives (Dice at least 0.99 for a palette re-save, which changes grey
levels by its quantisation; equal otherwise). Never an exception out of ``medseg infer``, never a mask of a damaged
file taken for a good one. ``MEDSEG_FUZZ_MUTANTS`` sets the number of random byte-level mutants per file
(default 6), ``MEDSEG_FUZZ_SEED`` their draws.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from medseg.cli import main
from medseg.pipeline import ModelSettings, build_network

RANDOM_MUTANTS = int(os.environ.get("MEDSEG_FUZZ_MUTANTS", "6"))
SEED = int(os.environ.get("MEDSEG_FUZZ_SEED", "0"))


def _checkpoint(folder: Path, task: str) -> Path:
    torch.manual_seed(0)
    settings = ModelSettings(task=task, network_name="unet2d", network_kwargs={"features": [4, 8, 16]},
                             spatial_size=(32, 32))  # fmt: skip
    folder.mkdir(parents=True)
    torch.save(build_network(settings).state_dict(), folder / "model.pt")
    settings.save(folder)
    return folder / "model.pt"


def _cut(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _flip(path: Path, rng: random.Random, header: int) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(min(header, len(data)))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def _volume_mutants(source: Path, folder: Path, rng: random.Random) -> dict[str, str]:
    """Mutants of the CT as NIfTI and NRRD; name -> what a correct answer is: ``"fail"``, ``"same"`` or ``"any"``
    (a byte flip that may or may not matter: failing or the same mask, never another mask)."""
    image = sitk.ReadImage(str(source))
    expected = {}

    def write(name: str, img: sitk.Image = image, compress: bool = True) -> Path:
        path = folder / name
        sitk.WriteImage(img, str(path), useCompression=compress)
        return path

    for suffix in (".nii.gz", ".nrrd"):
        stem = "nii" if suffix == ".nii.gz" else "nrrd"
        write(f"{stem}_original{suffix}")
        expected[f"{stem}_original"] = "same"
        for k, fraction in enumerate((0.05, 0.5, 0.98)):
            _cut(write(f"{stem}_cut{k}{suffix}"), fraction)
            expected[f"{stem}_cut{k}"] = "fail"
        write(f"{stem}_empty{suffix}").write_bytes(b"")
        expected[f"{stem}_empty"] = "fail"
        for k in range(RANDOM_MUTANTS):
            _flip(write(f"{stem}_flip{k}{suffix}"), rng, header=300)
            expected[f"{stem}_flip{k}"] = "any"
    values = sitk.GetArrayFromImage(image).astype(np.float32)
    values[40, 20:24, 20:24] = np.nan
    nan = sitk.GetImageFromArray(values)
    nan.CopyInformation(image)
    write("nii_nan.nii.gz", nan)
    write("nrrd_nan.nrrd", nan)
    expected["nii_nan"] = expected["nrrd_nan"] = "fail"
    write("nii_4d.nii.gz", sitk.JoinSeries([image, image]))
    expected["nii_4d"] = "fail"
    flat = nibabel.load(folder / "nii_original.nii.gz")
    header = flat.header.copy()
    header["pixdim"][1] = 0.0
    header.set_qform(None, code=0)
    header.set_sform(None, code=0)
    raw = nibabel.Nifti1Image(np.asanyarray(flat.dataobj), None, header)
    nibabel.save(raw, folder / "nii_flat.nii")
    _zero_spacing(folder / "nii_flat.nii")
    expected["nii_flat"] = "fail"
    os.mkfifo(folder / "nii_fifo.nii.gz")
    expected["nii_fifo"] = "fail"
    return expected


def _zero_spacing(path: Path) -> None:
    """pixdim[1] 0 and no qform or sform in the header as written (nibabel would repair it on save)."""
    data = bytearray(path.read_bytes())
    data[80:84] = np.float32(0).tobytes()
    data[252:256] = np.zeros(2, np.int16).tobytes()
    path.write_bytes(bytes(data))


def _image_mutants(source: Path, folder: Path, rng: random.Random) -> dict[str, str]:
    grey = Image.open(source).convert("L")
    expected = {}
    grey.save(folder / "png_original.png")
    expected["png_original"] = "same"
    grey.quantize(256).save(folder / "png_palette.png")
    expected["png_palette"] = "close"
    for k, fraction in enumerate((0.05, 0.5, 0.9)):
        grey.save(folder / f"png_cut{k}.png")
        _cut(folder / f"png_cut{k}.png", fraction)
        expected[f"png_cut{k}"] = "fail"
    (folder / "png_empty.png").write_bytes(b"")
    expected["png_empty"] = "fail"
    for k in range(RANDOM_MUTANTS):
        grey.save(folder / f"png_flip{k}.png")
        _flip(folder / f"png_flip{k}.png", rng, header=64)
        expected[f"png_flip{k}"] = "any"
    os.mkfifo(folder / "png_fifo.png")
    expected["png_fifo"] = "fail"
    return expected


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)


@pytest.mark.parametrize("kind", ["volumes", "images"])
def test_mutated_real_files_fail_with_their_name_or_give_the_original_mask(kind, real_data, tmp_path, capsys):
    rng = random.Random(SEED)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    if kind == "volumes":
        checkpoint = _checkpoint(tmp_path / "model", "ct")
        expected = _volume_mutants(real_data("ct_cip") / "ct-64.nrrd", inputs, rng)
    else:
        checkpoint = _checkpoint(tmp_path / "model", "cxr")
        expected = _image_mutants(sorted(real_data("cxr_openist").glob("*.jpg"))[0], inputs, rng)
    out = tmp_path / "out"
    code = main(["infer", "--checkpoint", str(checkpoint), "--input", str(inputs), "--output", str(out)])
    assert code == 1  # some mutants fail; never an exception out of the command
    assert "Traceback" not in capsys.readouterr().err
    records = {record["case"]: record for record in json.loads((out / "summary.json").read_text())["cases"]}
    assert set(records) == set(expected)
    reference = {}
    for name, record in records.items():
        if name.endswith("_original"):
            reference[name.split("_")[0]] = sitk.GetArrayFromImage(sitk.ReadImage(record["outputs"]["mask"])) > 0
    wrong = []
    for name, record in records.items():
        if record["status"] == "failed":
            if expected[name] in ("same", "close"):
                wrong.append(f"{name}: failed, but it is a good file: {record['error']}")
            elif Path(record["input"]).name not in record["error"] or "\n" in record["error"]:
                wrong.append(f"{name}: the reason does not name the file on one line: {record['error']!r}")
            elif re.search(r"\.cxx:|\(0x[0-9a-f]+\)", record["error"]):  # a reader's source line, not the problem
                wrong.append(f"{name}: the reason is the reader's internals: {record['error']!r}")
            continue
        if expected[name] == "fail":
            wrong.append(f"{name}: accepted, but the file is damaged")
            continue
        mask = sitk.GetArrayFromImage(sitk.ReadImage(record["outputs"]["mask"])) > 0
        original = reference[name.split("_")[0]]
        if mask.shape != original.shape or _dice(mask, original) < (0.99 if expected[name] == "close" else 1.0):
            wrong.append(f"{name}: accepted with another mask than the original's (a silently wrong output)")
    assert not wrong, "\n".join(wrong)
    for name in ("nii_fifo", "png_fifo"):
        if name in records:
            assert "not a regular file" in records[name]["error"]
    shutil.rmtree(inputs)
