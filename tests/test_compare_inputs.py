"""What ``medseg compare-losses`` (and ``medseg prepare``) refuse before anything runs, on real radiographs: a
datalist naming missing files or one case twice, repeated list options, a Ray address where nothing answers; and
the temporaries of killed runs, removed when a comparison starts again, only those whose process is gone."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import REPO_ROOT

from medseg.apps.compare import Comparison, Run, datalist_problems
from medseg.apps.compare.temporaries import clear_temporaries, scratch_folder
from medseg.cli import build_parser, main
from medseg.tasks import prepare_datalist

BUNDLE = REPO_ROOT / "bundles" / "cxr_lung_unet"


def _radiographs(real_data, folder: Path, n: int, start: int = 0) -> Path:
    """``n`` real radiographs of the shared OpenIST set and their masks, copied into ``folder``."""
    folder.mkdir(parents=True)
    for image in sorted(real_data("cxr_openist").glob("*.jpg"))[start : start + n]:
        shutil.copy(image, folder / image.name)
        shutil.copy(image.with_name(f"{image.stem}@.png"), folder / f"{image.stem}@.png")
    return folder


def _exit_code(arguments: list[str]) -> int:
    try:
        return main(arguments)
    except SystemExit as exit:
        return exit.code


def _compare(datalist: Path, out: Path, *flags: str) -> list[str]:
    return ["compare-losses", "--bundle", str(BUNDLE), "--datalist", str(datalist), "--losses", "bce,iou",
            "--folds", "2", "--epochs", "1", "--out", str(out), *flags]  # fmt: skip


def test_a_datalist_with_missing_files_or_a_case_named_twice_is_refused_before_any_run(real_data, tmp_path, capsys):
    data = _radiographs(real_data, tmp_path / "openist", 8)
    datalist = tmp_path / "datalist.json"
    prepare_datalist("cxr", data, datalist, n_folds=2, mask_pattern="{stem}@.png")
    content = json.loads(datalist.read_text())
    entries = content["training"]
    # an image deleted, a mask deleted, and a ninth entry that takes the name of the first with another image
    gone_image, gone_label = Path(entries[2]["image"]), Path(entries[5]["label"])
    gone_image.unlink()
    gone_label.unlink()
    twin = {**entries[1], "case": entries[0]["case"]}
    content["training"] = [*entries, twin]
    datalist.write_text(json.dumps(content))

    out = tmp_path / "comparison"
    assert _exit_code(_compare(datalist, out)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"medseg compare-losses: error: {datalist}: entry 2 (case {entries[2]['case']}): image {gone_image}: "
        "no such file",
        f"medseg compare-losses: error: {datalist}: entry 5 (case {entries[5]['case']}): label {gone_label}: "
        "no such file",
        f"medseg compare-losses: error: {datalist}: case {entries[0]['case']} is the name of 2 entries (0, 8); case "
        "names must be unique (a fold lists cases by name)",
    ], lines
    assert not out.exists()  # nothing trained, nothing written

    # a fold naming a case no entry has; an entry without a case name
    content["training"] = [{k: v for k, v in entry.items() if k != "case"} if i == 3 else entry
                           for i, entry in enumerate(entries) if i not in (2, 5)]  # fmt: skip
    datalist.write_text(json.dumps(content))
    assert _exit_code(_compare(datalist, out)) == 1
    err = capsys.readouterr().err
    assert f"{datalist}: entry 2: no case name" in err
    for case in (entries[2]["case"], entries[3]["case"], entries[5]["case"]):
        assert f"case {case} is in no entry under training" in err, (case, err)
    assert not out.exists()


def test_a_repeated_list_option_extends_or_is_refused(real_data, tmp_path, capsys):
    """``--data-root A --data-root B`` is two sources, as ``--data-root A B`` is; a repeated option of a fixed number
    of values (``--spatial-size``, ``--hu-window``) is a usage error naming it, never the last one kept."""
    first = _radiographs(real_data, tmp_path / "hospital_a", 3)
    second = _radiographs(real_data, tmp_path / "hospital_b", 3, start=3)
    out = tmp_path / "two.json"
    prepare = ["prepare", "--task", "cxr", "--mask-pattern", "{stem}@.png", "--folds", "0"]
    assert _exit_code([*prepare, "--data-root", str(first), "--data-root", str(second), "--out", str(out)]) == 0
    entries = json.loads(out.read_text())["training"]
    expected = {(path.parent.name, path.stem) for folder in (first, second) for path in folder.glob("*.jpg")}
    assert {(entry["source"], Path(entry["image"]).stem) for entry in entries} == expected
    together = tmp_path / "together.json"
    assert _exit_code([*prepare, "--data-root", str(first), str(second), "--out", str(together)]) == 0
    assert json.loads(together.read_text())["training"] == entries
    capsys.readouterr()

    datalist = tmp_path / "datalist.json"
    prepare_datalist("cxr", first, datalist, n_folds=0, mask_pattern="{stem}@.png")
    code = _exit_code(_compare(datalist, tmp_path / "c", "--spatial-size", "32", "32", "--spatial-size", "48", "48"))
    assert code == 2
    assert "argument --spatial-size/--spatial_size: given twice (again: 48 48); give it once" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    # the task options' flags: a list of any length extends, one of fixed length is refused when repeated
    ct = ["prepare", "--task", "ct", "--data-root", str(first), "--out", str(tmp_path / "ct.json")]
    assert build_parser().parse_args([*ct, "--foreground", "3", "--foreground", "4", "5"]).foreground == [3, 4, 5]
    with pytest.raises(SystemExit):
        build_parser().parse_args([*ct, "--mask-threshold", "0.5", "--mask-threshold", "0.7"])
    assert "argument --mask-threshold: given twice (again: 0.7); give it once" in capsys.readouterr().err


def test_a_ray_address_where_nothing_answers_is_a_usage_error_within_seconds(real_data, tmp_path, capsys):
    pytest.importorskip("ray", reason="the Ray backend's checks need ray (pip install -e '.[ray]')")
    with socket.socket() as probe:  # a port of 127.0.0.1 where nothing listens: bound, then released
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    datalist = tmp_path / "datalist.json"
    prepare_datalist("cxr", _radiographs(real_data, tmp_path / "openist", 6), datalist, n_folds=2,
                     mask_pattern="{stem}@.png")  # fmt: skip
    for address in (f"127.0.0.1:{port}", "127.0.0.1:1", "127.0.0.1"):
        start = time.monotonic()
        code = _exit_code(_compare(datalist, tmp_path / "c", "--backend", "ray", "--address", address))
        err = capsys.readouterr().err
        assert code == 2 and time.monotonic() - start < 60, err
        assert f"argument --address: {address}: " in err, err
        assert ("no Ray cluster answers there" if ":" in address else "not HOST:PORT") in err, err
    assert not (tmp_path / "c").exists()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_resume_clears_the_temporaries_of_killed_runs_and_only_those(tmp_path):
    """What a killed driver, a killed bundle process and a killed Ray task leave is removed; what a process still
    running writes, and a user's own hidden files, stay. Independent of when anything was killed: the leftovers are
    made here, by processes that have ended (or still run)."""
    out = tmp_path / "comparison"
    comparison = Comparison(bundle=BUNDLE, datalist=tmp_path / "d.json", losses=["bce"], folds=1, seeds=[0, 1],
                            out=out)  # fmt: skip
    runs = comparison.runs()
    seed0, seed1 = (run.folder(out) for run in runs)
    seed0.mkdir(parents=True)
    dead, living = _dead_pid(), subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [
            seed1.parent / ".seed1._0as_378",  # an unpacking folder of an earlier version (mkdtemp's name)
            seed1.parent / f".seed1.{dead}_k2j.tmp",  # a killed driver's unpacking folder
            seed0 / "models" / f".model.pt.{dead}_x1y.tmp.pt",  # a killed bundle process's checkpoint
        ]
        kept = [
            seed0 / "models" / f".model.pt.{living.pid}_z9q.tmp.pt",  # a bundle process still writing
            seed1.parent / ".seed1.notes",  # a user's own
            seed0 / ".keep",
        ]
        for path in stale[:2]:
            (path / "models").mkdir(parents=True)
            (path / "models" / "model.pt").write_bytes(b"x")
        for path in [stale[2], *kept]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        assert sorted(clear_temporaries(comparison, runs)) == sorted(stale)
        assert not any(path.exists() for path in stale) and all(path.exists() for path in kept)
        assert Run("default", "bce", 0, 1).folder(out).parent.is_dir()

        # a Ray task's scratch folders on its node: those of gone processes go when the next task starts there
        scratch = tmp_path / "node_tmp"
        (scratch / f"medseg-run-{dead}_abc").mkdir(parents=True)
        (scratch / f"medseg-run-{living.pid}_def").mkdir()
        (scratch / "medseg-run-olderformat").mkdir()
        new = scratch_folder(scratch)
        names = sorted(path.name for path in scratch.iterdir())
        assert names == sorted([f"medseg-run-{living.pid}_def", "medseg-run-olderformat", new.name]), names
    finally:
        living.kill()
        living.wait()


def test_a_dicom_series_folder_is_an_image_the_check_accepts(real_data, tmp_path):
    """A CT datalist's image may be a series folder (the shared CT's): there, it passes; gone, it is named."""
    ct = real_data("ct_cip")
    label = str(ct / "wholeLung-64.nrrd")
    entries = [{"case": "ct", "image": str(ct / "ct-64Dicom"), "label": label},
               {"case": "gone", "image": str(tmp_path / "no_series"), "label": label}]  # fmt: skip
    folds = [{"fold": 0, "train": ["ct"], "validation": ["gone"], "test": []}]
    datalist = tmp_path / "ct.json"
    datalist.write_text(json.dumps({"training": entries, "folds": folds}))
    assert datalist_problems(datalist, 1, BUNDLE) == [
        f"{datalist}: entry 1 (case gone): image {tmp_path / 'no_series'}: no such file"
    ]
