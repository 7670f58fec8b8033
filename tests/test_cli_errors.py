"""Bad input to the ``medseg`` command: one table row per case of issue 12 (input -> exit status, message, files).

Usage errors exit 2 with one ``error:`` line naming the argument, before any data is read; data that cannot be
used exits 1 with a message naming the file and the problem; Ctrl-C exits 130 with one line. No row leaves a
partial output or a temporary file behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medseg.cli import main
from medseg.data import montgomery_datalist
from medseg.tasks import prepare_datalist


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code
    return code, out.getvalue(), err.getvalue()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture(scope="module")
def pairs(synthetic, tmp_path_factory) -> Path:
    """Three chest X-rays in ``images/`` + ``masks/`` (the folder layout), read-only for the rows."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for entry in montgomery_datalist(synthetic("cxr", n=3)):
        name = Path(entry["image"]).name
        Image.open(entry["image"]).save(root / "images" / name)
        left, right = (np.asarray(Image.open(p)) for p in entry["label"])
        Image.fromarray(np.maximum(left, right)).save(root / "masks" / name)
    return root


def _one_pair(tmp: Path, pairs: Path, image: Callable[[bytes], bytes] = bytes, mask=bytes) -> Path:
    """A data root with the first pair of ``pairs``, its image and mask bytes passed through the two functions."""
    root = tmp / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    name = sorted((pairs / "images").iterdir())[0].name
    (root / "images" / name).write_bytes(image((pairs / "images" / name).read_bytes()))
    (root / "masks" / name).write_bytes(mask((pairs / "masks" / name).read_bytes()))
    return root


def _all_foreground(tmp: Path, pairs: Path) -> Path:
    root = _one_pair(tmp, pairs)
    for mask in (root / "masks").iterdir():
        Image.fromarray(np.full_like(np.asarray(Image.open(mask)), 255)).save(mask)
    return root


def _unwritable(tmp: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: /sys refuses even root)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@dataclass(frozen=True)
class Row:
    """``argv(tmp, pairs)`` -> exit ``code``, ``message`` in stderr (stdout for 0), files under ``tmp`` after."""

    argv: Callable[[Path, Path], list[str]]
    code: int
    message: str
    files: Callable[[Path], list[str]] | None = None


def _prepare(root: Callable[[Path, Path], Path], *extra: str, out: Callable[[Path], Path] | None = None) -> Callable:
    def argv(tmp: Path, pairs: Path) -> list[str]:
        target = out(tmp) if out else tmp / "out" / "d.json"
        return ["prepare", "--task", "cxr", "--data-root", str(root(tmp, pairs)), "--out", str(target), *extra]

    return argv


def _given(tmp: Path, pairs: Path) -> Path:
    return pairs


def _empty_folder(tmp: Path, pairs: Path) -> Path:
    """A data root that fails to be read (exit 1): a row exiting 2 on it shows that --out was checked first."""
    (tmp / "empty").mkdir(exist_ok=True)
    return tmp / "empty"


def _loop(tmp: Path, pairs: Path) -> Path:
    (tmp / "loop").symlink_to(tmp / "loop")
    return tmp / "loop"


def _synth(out: Callable[[Path], Path], *extra: str) -> Callable:
    return lambda tmp, pairs: ["synth", "--task", "cxr", "--out", str(out(tmp)), *extra]


def _three_cases(tmp: Path) -> Path:
    main(["synth", "--task", "cxr", "--out", str(tmp / "cases"), "--n", "3"])
    return tmp / "cases"


def _a_file(tmp: Path) -> Path:
    (tmp / "a.txt").write_text("mine")
    return tmp / "a.txt"


NOT_AN_IMAGE = ".png: not an image: no PNG, JPEG, BMP, PNM, TIFF or DICOM signature (it begins with b'no pixels he')"
NO_RATIO = "neg/pos pixel ratio  undefined: the masks with foreground have no background pixel, so no pos_weight"
NOT_EMPTY = "cases is not empty (2 entries: CXR_png, ManualMask); give a new or empty folder"


def _pair_and_datalist(tmp: Path) -> list[str]:
    pair = ["data", "data/images", "data/images/MCUCXR_0000_0.png", "data/masks", "data/masks/MCUCXR_0000_0.png"]
    return [*pair, "out", "out/d.json"]


ROWS = {
    # prepare: values checked by the parser, before anything is read
    "--folds -2": Row(_prepare(_given, "--folds", "-2"), 2, "argument --folds: must be at least 0, got -2"),
    "--val-fraction 1.5": Row(
        _prepare(_given, "--val-fraction", "1.5"), 2, "argument --val-fraction: must be in [0, 1), got 1.5"
    ),
    "--seed -1 with --folds 0": Row(
        _prepare(_given, "--folds", "0", "--seed", "-1"), 2, "argument --seed: must be from 0 to 4294967295, got -1"
    ),
    "--seed x": Row(_prepare(_given, "--seed", "x"), 2, "argument --seed: expected an integer, got 'x'"),
    # prepare: the output path, checked before the data root is read (which would exit 1)
    "--out in an unwritable folder": Row(
        _prepare(_empty_folder, out=lambda tmp: _unwritable(tmp) / "d.json"),
        2,
        "argument --out: cannot create files in",
    ),
    "--out is a folder": Row(_prepare(_empty_folder, out=lambda tmp: tmp), 2, "is a folder; give a file name"),
    "--out under a file": Row(
        _prepare(_empty_folder, out=lambda tmp: _a_file(tmp) / "d.json"), 2, "a.txt is not a folder"
    ),
    # prepare: the data root
    "--data-root a symlink loop": Row(_prepare(_loop), 2, "loop: Too many levels of symbolic links"),
    "--data-root missing": Row(_prepare(lambda tmp, pairs: tmp / "nowhere"), 2, "nowhere: No such file or directory"),
    "--data-root without pairs": Row(_prepare(_empty_folder), 1, "empty: chest X-ray layout not recognised"),
    # prepare: files that are not images
    "empty image": Row(_prepare(lambda tmp, pairs: _one_pair(tmp, pairs, image=lambda b: b"")), 1, ".png: empty file"),
    "text as image": Row(
        _prepare(lambda tmp, pairs: _one_pair(tmp, pairs, image=lambda b: b"no pixels here")), 1, NOT_AN_IMAGE
    ),
    "half a PNG image": Row(
        _prepare(lambda tmp, pairs: _one_pair(tmp, pairs, image=lambda b: b[: len(b) // 2])),
        1,
        ".png: truncated PNG image (image file is truncated",
    ),
    "half a PNG mask": Row(
        _prepare(lambda tmp, pairs: _one_pair(tmp, pairs, mask=lambda b: b[: len(b) // 2])),
        1,
        "masks/MCUCXR_0000_0.png: truncated PNG image",
    ),
    # prepare: masks that are all foreground: a statement, not a pos_weight of 0
    "all-foreground masks": Row(_prepare(_all_foreground, "--folds", "0"), 0, NO_RATIO, _pair_and_datalist),
    # synth
    "synth --n 0": Row(_synth(lambda tmp: tmp / "s", "--n", "0"), 2, "argument --n: must be at least 1, got 0"),
    "synth --n -3": Row(_synth(lambda tmp: tmp / "s", "--n", "-3"), 2, "argument --n: must be at least 1, got -3"),
    "synth --seed -1": Row(
        _synth(lambda tmp: tmp / "s", "--seed", "-1"), 2, "argument --seed: must be from 0 to 4294967295, got -1"
    ),
    "synth --out an existing file": Row(_synth(_a_file), 2, "a.txt is a file, not a folder", lambda tmp: ["a.txt"]),
    "synth --n 1 into 3 cases": Row(_synth(_three_cases, "--n", "1"), 2, NOT_EMPTY),
    "synth --out under a file": Row(_synth(lambda tmp: _a_file(tmp) / "s"), 2, "a.txt is not a folder"),
    # demo
    "demo --epochs 0": Row(
        lambda tmp, pairs: ["demo", "--out", str(tmp / "demo"), "--epochs", "0"],
        2,
        "argument --epochs: must be at least 1, got 0",
    ),
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_bad_input_row(name, pairs, tmp_path):
    row = ROWS[name]
    argv = row.argv(tmp_path, pairs)
    before = _files(tmp_path)
    code, printed, err = run(*argv)
    assert code == row.code, (printed, err)
    shown = printed if code == 0 else err
    assert row.message in shown
    if code:  # one line says it (argparse prints its usage lines first)
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and row.message in errors[0], err
    expected = row.files(tmp_path) if row.files else before
    assert _files(tmp_path) == sorted(expected)  # no output, no temporary, nothing changed


def test_three_cases_are_left_as_they_were(tmp_path):
    main(["synth", "--task", "cxr", "--out", str(tmp_path / "cases"), "--n", "3"])
    before = {p: p.read_bytes() for p in (tmp_path / "cases").rglob("*") if p.is_file()}
    code, _, err = run("synth", "--task", "cxr", "--out", str(tmp_path / "cases"), "--n", "1")
    assert code == 2 and "is not empty" in err
    assert {p: p.read_bytes() for p in (tmp_path / "cases").rglob("*") if p.is_file()} == before
    assert len(list((tmp_path / "cases" / "CXR_png").iterdir())) == 3


def test_all_foreground_datalist_has_no_pos_weight(pairs, tmp_path):
    root = _all_foreground(tmp_path, pairs)
    report = prepare_datalist("cxr", root, tmp_path / "d.json", n_folds=0)
    summary = json.loads((tmp_path / "d.json").read_text())["summary"]
    assert report.summary["pos_weight"] is None and summary["pos_weight"] is None
    assert summary["foreground_fraction"] == 1.0


def test_the_library_refuses_what_the_parser_refuses(pairs, tmp_path):
    for kwargs, message in (
        ({"n_folds": -2}, "n_folds must be 0"),
        ({"val_fraction": 1.5}, "val_fraction must be in"),
        ({"n_folds": 0, "seed": -1}, "seed must be non-negative"),
    ):
        with pytest.raises(ValueError, match=message):
            prepare_datalist("cxr", pairs, tmp_path / "d.json", **kwargs)
    assert list(tmp_path.iterdir()) == []


def _interrupt(argv: list[str], tmp_path: Path, ready: Callable[[int], bool]) -> tuple[int, str]:
    """Run ``medseg`` in a child process, send SIGINT once ``ready(pid)``, return its status and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "medseg", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal, not a background job
    )
    deadline = time.monotonic() + 120
    while not ready(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    return process.returncode, err.decode()


def _importing_the_library(pid: int) -> bool:
    """Whether the process has loaded PyTorch's or NumPy's compiled code: ``main()`` runs and imports them.

    A fixed delay is not enough: on a slow machine Python itself may still be starting, before any of medseg's code
    has run, and no program can turn a Ctrl-C there into its own message.
    """
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return "libtorch" in maps or "_multiarray_umath" in maps


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see what the child has loaded")
@pytest.mark.parametrize("moment", ["while importing", "while writing"])
def test_ctrl_c_is_one_line_and_status_130(tmp_path, moment):
    out = tmp_path / "big"
    ready = {
        "while importing": _importing_the_library,
        "while writing": lambda pid: out.is_dir() and any(out.rglob("*.mhd")),
    }[moment]
    code, err = _interrupt(["synth", "--task", "luna16", "--out", str(out), "--n", "500"], tmp_path, ready)
    assert code == 130, err
    assert err.strip().splitlines()[-1].endswith(": interrupted") and "Traceback" not in err
    if moment == "while writing":
        assert err.strip() == "medseg synth: interrupted"
