"""Task records: one record is all a new dataset family needs; image-only entries; option checks."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from medseg.cli import main
from medseg.data import folder_datalist
from medseg.data.synthetic import make_shenzhen
from medseg.tasks import TASKS, Task, TaskOption, get_task, prepare_datalist, register_task
from medseg.transforms import cxr_image_transforms, cxr_label_transforms


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit:
            code = exit.code
    return code, out.getvalue(), err.getvalue()


def _toy_pairs(root, skipped=None, mask_suffix="_mask"):
    return folder_datalist(root, f"masks/{{stem}}{mask_suffix}.png", image_dir="CXR_png", skipped=skipped)


@pytest.fixture
def toy_task():
    """A made-up dataset family, registered for one test: one record, nothing else."""
    task = register_task(
        Task(
            name="toy",
            description="radiographs in CXR_png/ with masks/<stem><suffix>.png",
            adapter=_toy_pairs,
            make_image_transforms=lambda spatial_size: cxr_image_transforms(spatial_size),
            make_label_transforms=lambda spatial_size: cxr_label_transforms(spatial_size),
            options=(TaskOption("mask_suffix", "pairs", "what follows the image name in a mask's name", "_mask"),),
            synthetic={"toy": make_shenzhen},
        )
    )
    yield task
    del TASKS["toy"]


def test_a_new_task_is_one_record_that_synth_prepare_and_the_cli_see(toy_task, tmp_path):
    root, out = tmp_path / "toy", tmp_path / "toy.json"
    code, printed, _ = run("synth", "--task", "toy", "--out", str(root), "--n", "4", "--seed", "2")
    assert code == 0 and "wrote 4 synthetic toy case(s)" in printed
    assert len(list((root / "CXR_png").glob("*.png"))) == 4

    code, printed, _ = run("prepare", "--task", "toy", "--data-root", str(root), "--out", str(out), "--folds", "2")
    assert code == 0 and "valid pairs          4" in printed
    payload = json.loads(out.read_text())
    assert payload["options"]["mask_suffix"] == "_mask" and len(payload["folds"]) == 2

    code, _, err = run("prepare", "--task", "toy", "--data-root", str(root), "--out", str(out), "--mask-suffix", "_x")
    assert code == 1 and "no mask" in err  # the option reached the adapter
    code, _, err = run("prepare", "--task", "cxr", "--data-root", str(root), "--out", str(out), "--mask-suffix", "_x")
    assert code == 2 and "--mask-suffix do(es) not apply to --task cxr" in err

    report = prepare_datalist("toy", root, n_folds=0)
    assert [entry["case"] for entry in report.datalist] == sorted(p.stem for p in (root / "CXR_png").glob("*.png"))
    code, printed, _ = run("prepare", "--help")
    assert "--mask-suffix" in printed and "toy:" in printed


@pytest.mark.parametrize("name", sorted(TASKS))
def test_image_path_runs_without_a_label_and_matches_the_pair(name, synthetic):
    task = get_task(name)
    root = synthetic(name, n=2)
    entry = task.find_pairs(root)[0]
    size = None if task.volumetric else (64, 48)
    alone = task.image_transforms(size)({"image": entry["image"]})
    pair = task.pair_transforms(size)(dict(entry))
    assert "label" not in alone
    assert torch.equal(alone["image"], pair["image"])
    np.testing.assert_array_equal(np.asarray(alone["image"].affine), np.asarray(pair["image"].affine))
    assert alone["image"].shape[0] == task.channels()
    # one label convention for every task: float32, values 0 and 1, the image's spatial shape
    label = pair["label"]
    assert label.dtype == torch.float32 and set(torch.unique(label).tolist()) == {0.0, 1.0}
    assert label.shape == (1, *pair["image"].shape[1:])


def test_options_are_checked_against_the_record():
    lfw = get_task("lfw")
    with pytest.raises(
        ValueError, match=r"option 'mask_pattern' does not apply to task 'lfw' \(its options: greyscale"
    ):
        lfw.label_transforms(None, mask_pattern="x")
    assert lfw.resolve_options() == {"greyscale": False}
    assert lfw.label_set.members(["face"]) == (("skin", "hair"),) and lfw.label_set.members() == (("skin", "hair"),)
    assert lfw.label_set.members(["hair", "skin"]) == (("hair",), ("skin",))
    with pytest.raises(ValueError, match="labels face, hair overlap"):
        lfw.label_set.members(["face", "hair"])
    with pytest.raises(ValueError, match="unknown label"):
        lfw.label_set.members(["beard"])
    assert lfw.channels() == 3 and lfw.channels(greyscale=True) == 1
    with pytest.raises(ValueError, match="volumes, which keep their size"):
        get_task("luna16").image_transforms((64, 64))
    with pytest.raises(ValueError, match="unknown task 'mri'; valid tasks: luna16, ct, cxr, lfw, helen"):
        get_task("mri")
    with pytest.raises(ValueError, match="already registered"):
        register_task(lfw)
    with pytest.raises(ValueError, match="no synthetic layout 'nope'"):
        get_task("cxr").synthesize("unused", n=1, layout="nope")
