"""The synthetic Shenzhen, DICOM chest X-ray and HELEN sets: real layouts, learnable content, deterministic per seed."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pydicom
import pytest
from PIL import Image

from medseg.cli import main
from medseg.data import synthesize
from medseg.transforms import HELEN_CLASSES


def _digest(root) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("task", ["shenzhen", "cxr-dicom", "helen"])
def test_seed_determines_the_data(tmp_path, task):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        synthesize(task, tmp_path / name, n=2, seed=seed)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_shenzhen_layout(synthetic):
    root = synthetic("shenzhen", n=4)
    images = sorted((root / "CXR_png").iterdir())
    assert all(re.fullmatch(r"CHNCXR_\d{4}_[01]\.png", p.name) for p in images)
    for image in images:
        mask = np.asarray(Image.open(root / "masks" / f"{image.stem}_mask.png"))
        assert mask.shape == np.asarray(Image.open(image)).shape and set(np.unique(mask)) == {0, 255}
        assert 0.1 < (mask > 0).mean() < 0.5


def test_dicom_radiographs_are_12_bit_and_match_their_masks(synthetic):
    root = synthetic("cxr-dicom", n=2)
    for path in sorted((root / "images").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        assert ds.Modality == "DX" and ds.BitsStored == 12 and ds.PhotometricInterpretation == "MONOCHROME2"
        pixels = ds.pixel_array
        assert pixels.max() < 4096 and pixels.max() > 2000
        mask = np.asarray(Image.open(root / "masks" / f"{path.stem}.png")) > 0
        assert mask.shape == pixels.shape
        assert pixels[mask].mean() < pixels[~mask & (pixels > 1000)].mean()  # lungs darker than the body


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


def test_synth_command_knows_the_new_tasks(tmp_path, capsys):
    assert main(["synth", "--task", "helen", "--out", str(tmp_path), "--n", "2"]) == 0
    assert "wrote 2 synthetic helen case(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "images").glob("*.jpg"))) == 2
