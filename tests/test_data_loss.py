"""Nothing lost, nothing corrupt: a short write, a truncated input, two runs on one folder, a killed writer.

Each test is one class of failure, with the file or the machine state that makes it happen: a disk that fills up
(ITK reports a short write without raising), a ``.nii.gz`` cut in half (ITK reads it zero-filled without an
error), a second ``medseg infer`` on the output folder of a running one, temporaries of a process still writing.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medseg.cli import main
from medseg.files import OutputLockedError, atomic_path, output_lock, remove_stale_temporaries
from medseg.inference import outputs
from medseg.inference.provenance import LEDGER_FOLDER
from medseg.pipeline import ModelSettings, build_network
from medseg.tasks import prepare_datalist
from medseg.transforms import ImageFileError, check_volume_file

TINY = {"features": [4, 8, 16]}


def infer(*argv: str) -> int:
    try:
        return main(["infer", *argv])
    except SystemExit as exit:
        return exit.code


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained CT U-Net with its record: every volume gets the same deterministic network."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    settings = ModelSettings(task="ct", network_name="unet2d", network_kwargs=TINY, spatial_size=(32, 32))
    torch.save(build_network(settings).state_dict(), folder / "model.pt")
    settings.save(folder)
    return folder / "model.pt"


@pytest.fixture
def volumes(real_data, tmp_path) -> Path:
    """Three copies of the real CT as NIfTI: a, b and c."""
    image = sitk.ReadImage(str(real_data("ct_cip") / "ct-64.nrrd"))
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in "abc":
        sitk.WriteImage(image, str(folder / f"{name}.nii.gz"), useCompression=True)
    return folder


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_gzip_volume_is_refused_by_inference_and_prepare(real_data, checkpoint, volumes, tmp_path):
    """ITK reads a ``.nii.gz`` cut in half without an error, half its slices zero; medseg names the file."""
    _cut_in_half(volumes / "b.nii.gz")
    with pytest.raises(ImageFileError, match=r"b\.nii\.gz: truncated gzip stream"):
        check_volume_file(volumes / "b.nii.gz")
    check_volume_file(volumes / "a.nii.gz")  # a whole file passes
    out = tmp_path / "out"
    assert infer("--checkpoint", str(checkpoint), "--input", str(volumes), "--output", str(out)) == 1
    records = {r["case"]: r for r in json.loads((out / "summary.json").read_text())["cases"]}
    assert [records[name]["status"] for name in "abc"] == ["ok", "failed", "ok"]
    assert "b.nii.gz: truncated gzip stream" in records["b"]["error"]
    assert not (out / "b_seg.nii.gz").exists()
    # medseg prepare: the pair is bad, with the same reason
    data = tmp_path / "ct"
    (data / "labels").mkdir(parents=True)
    shutil.copytree(volumes, data / "images")
    for name in "abc":
        shutil.copy(real_data("ct_cip") / "wholeLung-64.nrrd", data / "labels" / f"{name}.nrrd")
    report = prepare_datalist("ct", data, n_folds=0, image_dir="images", mask_pattern="labels/{stem}.nrrd")
    [bad] = report.bad_pairs
    assert f"{data / 'images' / 'b.nii.gz'}: truncated gzip stream" in bad.reason and len(report.datalist) == 2


def test_an_uncompressed_nifti_shorter_than_its_header_is_refused(real_data, tmp_path):
    image = sitk.ReadImage(str(real_data("ct_cip") / "ct-64.nrrd"))
    path = tmp_path / "short.nii"
    sitk.WriteImage(image, str(path))
    expected = 352 + int(np.prod(image.GetSize())) * 2  # NIfTI-1 header and offset, int16 voxels
    assert path.stat().st_size == expected
    with open(path, "r+b") as stream:
        stream.truncate(expected - 1000)
    with pytest.raises(ImageFileError, match=rf"short\.nii: truncated NIfTI file: its header announces {expected}"):
        check_volume_file(path)


def test_a_short_write_fails_that_case_alone_and_a_rerun_redoes_it(checkpoint, volumes, tmp_path, monkeypatch):
    """A full disk, as ITK meets it: the write 'succeeds' with an empty or cut file. No output takes its final name
    unless it reads back whole; that case fails, the others go on, the summary is written, a rerun redoes it."""
    write = sitk.WriteImage

    def short_write(image, name, *args, **kwargs):
        write(image, name, *args, **kwargs)
        if Path(name).name.startswith(".b_prob"):
            _cut_in_half(Path(name))  # the probabilities cut short: ITK said nothing
        elif Path(name).name.startswith(".c_seg"):
            Path(name).write_bytes(b"")  # 'wrote only 0 of N bytes'

    monkeypatch.setattr(outputs.sitk, "WriteImage", short_write)
    out = tmp_path / "out"
    arguments = ["--checkpoint", str(checkpoint), "--input", str(volumes), "--output", str(out), "--probabilities"]
    assert infer(*arguments) == 1
    records = {r["case"]: r for r in json.loads((out / "summary.json").read_text())["cases"]}
    assert [records[name]["status"] for name in "abc"] == ["ok", "failed", "failed"]
    assert "b_prob.nii.gz" in records["b"]["error"] and "is the disk full?" in records["b"]["error"]
    assert "c_seg.nii.gz" in records["c"]["error"] and "nothing was written" in records["c"]["error"]
    for path in out.iterdir():  # every file under its final name is whole; no temporary is left
        assert not path.name.startswith(".") or path.name == LEDGER_FOLDER, path
        if path.name.endswith(".nii.gz"):
            check_volume_file(path)
    assert {p.name for p in out.iterdir()} == {
        "a_seg.nii.gz",
        "a_prob.nii.gz",
        "b_seg.nii.gz",
        "summary.json",
        LEDGER_FOLDER,
    }
    assert sorted(p.name for p in (out / LEDGER_FOLDER).iterdir()) == ["a.json", "b.json", "c.json"]
    monkeypatch.setattr(outputs.sitk, "WriteImage", write)
    assert infer(*arguments) == 0  # the disk has room again: the failed cases are done, the finished one kept
    records = {r["case"]: r for r in json.loads((out / "summary.json").read_text())["cases"]}
    assert [records[name]["status"] for name in "abc"] == ["skipped", "ok", "ok"]
    assert records["b"]["outputs"] == {"probabilities": str(out / "b_prob.nii.gz")}  # only what was missing


def test_an_output_damaged_since_it_was_written_is_refused_then_redone_with_overwrite(checkpoint, volumes, tmp_path):
    """A mask cut short after medseg wrote it is not medseg's output any more: it is neither taken for done nor
    replaced unasked; ``--overwrite`` writes it again."""
    out = tmp_path / "out"
    arguments = ["--checkpoint", str(checkpoint), "--input", str(volumes / "a.nii.gz"), "--output", str(out)]
    assert infer(*arguments) == 0
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "a_seg.nii.gz")))
    _cut_in_half(out / "a_seg.nii.gz")
    damaged = (out / "a_seg.nii.gz").read_bytes()
    assert infer(*arguments) == 1
    [record] = json.loads((out / "summary.json").read_text())["cases"]
    assert "a_seg.nii.gz: exists and was not written by medseg for this case (or was changed since" in record["error"]
    assert (out / "a_seg.nii.gz").read_bytes() == damaged
    assert infer(*arguments, "--overwrite") == 0
    assert json.loads((out / "summary.json").read_text())["cases"][0]["status"] == "ok"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out / "a_seg.nii.gz"))), reference)


def _tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    return subprocess.run(command, capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_full_disk_leaves_no_empty_or_truncated_output(checkpoint, volumes, tmp_path):
    """A real full disk: a 2 MB tmpfs (skipped where it cannot be mounted)."""
    disk = tmp_path / "disk"
    if shutil.which("mount") is None or not _tmpfs(disk, "2m"):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission in this container)")
    try:
        for name in "defgh":
            shutil.copy(volumes / "a.nii.gz", volumes / f"{name}.nii.gz")
        out = disk / "out"
        code = infer("--checkpoint", str(checkpoint), "--input", str(volumes), "--output", str(out),
                     "--probabilities", "--overlay")  # fmt: skip
        assert code == 1
        finished = [path for path in out.iterdir() if not path.name.startswith(".")]
        hidden = [path for path in out.iterdir() if path.name.startswith(".") and path.name != LEDGER_FOLDER]
        hidden += [path for path in (out / LEDGER_FOLDER).iterdir() if path.name.startswith(".")]
        assert not hidden  # no temporary left
        for path in finished:
            assert path.stat().st_size > 0, path
            if path.name.endswith(".nii.gz"):
                check_volume_file(path)
        summary = out / "summary.json"
        if summary.exists():
            records = json.loads(summary.read_text())["cases"]
            failed = [r for r in records if r["status"] == "failed"]
            assert failed and all("disk" in r["error"] or "No space" in r["error"] for r in failed)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_second_run_on_the_same_output_is_refused(checkpoint, volumes, tmp_path, capsys):
    out = tmp_path / "out"
    with output_lock(out):  # a run writing there: the lock is the folder's, held until it ends
        code = infer("--checkpoint", str(checkpoint), "--input", str(volumes), "--output", str(out))
        assert code == 2
        assert "is in use by another run" in capsys.readouterr().err
        with pytest.raises(OutputLockedError):
            with output_lock(out):
                pass
    assert not list(out.iterdir())  # the refused run wrote nothing; the lock left no file
    assert infer("--checkpoint", str(checkpoint), "--input", str(volumes / "a.nii.gz"), "--output", str(out)) == 0


def test_only_temporaries_of_dead_processes_are_stale(tmp_path):
    target = tmp_path / "mask.nii.gz"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        live = tmp_path / f".mask.nii.gz.{sleeper.pid}_{uuid.uuid4().hex[:8]}.tmp.nii.gz"
        gone = tmp_path / f".mask.nii.gz.{int(dead.stdout)}_{uuid.uuid4().hex[:8]}.tmp.nii.gz"
        foreign = tmp_path / ".mask.nii.gz.abc123.tmp.nii.gz"  # no process id: not a temporary medseg writes
        for path in (live, gone, foreign):
            path.write_bytes(b"partial")
        assert remove_stale_temporaries(target) == [gone]
        assert live.exists() and foreign.exists()
        with atomic_path(target) as temporary:  # a write of the target leaves the live writer's file alone too
            assert temporary.name.startswith(f".mask.nii.gz.{os.getpid()}_")
            with gzip.open(temporary, "wb") as stream:
                stream.write(b"x")
        assert live.exists() and target.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
