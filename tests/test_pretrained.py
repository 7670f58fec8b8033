"""Shipped models (:mod:`medseg.pretrained`, ``scripts/ship_model.py``): a tiny U-Net trained for seconds on shared
Shenzhen radiographs is shipped into a temporary folder (``$MEDSEG_PRETRAINED``) with the CC0 example radiographs
as golden cases, then listed (``medseg models``), run (``medseg infer --model``, both runtimes, against
``--model-dir`` on the same files and scikit-learn's Dice), verified (``--verify``), and tampered with: a weight
byte, the golden set (emptied, cut, not a list, entries pointing to another case's files, a mask of another size),
the ONNX export (stamps stripped, its graph edited, ``model.pt`` absent). Expected figures are computed here by
hand (hashlib, NumPy, scikit-learn), never taken from an earlier run of the code under test."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from sklearn.metrics import f1_score
from support import REPO_ROOT
from support.tiny_models import train_tiny_model

from medseg.cli import main
from medseg.inference import GRAPH_KEY, QUANTIZED_KEY, WEIGHTS_KEY, read_state_dict
from medseg.pipeline import STAMP_KEY

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install -e '.[onnx]') is not installed")
sys.path.insert(0, str(REPO_ROOT / "scripts"))

#: The name the fixture ships under: the demo's model, so that the demo's last step runs on it too.
NAME = "cxr-lungs"
#: The golden inputs: the CC0 radiographs shipped in examples/.
EXAMPLES = [REPO_ROOT / "examples" / "CHNCXR_0001_0.jpg", REPO_ROOT / "examples" / "CHNCXR_0328_1.jpg"]
#: Per-case test Dice written into the fixture's evaluation, by source: the card's and the list's results come
#: from them (mean and sample SD checked by hand below).
TEST_DICE = {"shenzhen-a": [0.90, 0.80, 0.70], "shenzhen-b": [0.95, 0.85]}


def medseg(*argv: object) -> int:
    try:
        return main([str(arg) for arg in argv])
    except SystemExit as exit:
        return exit.code


def _trained_folder(folder: Path, shenzhen: Path) -> Path:
    """A tiny model trained on 10 Shenzhen radiographs, with the files a bundle run leaves (data list with sources,
    evaluation summary and per-case Dice)."""
    images = sorted((shenzhen / "images").glob("*.jpg"))[10:20]
    pairs = [(image, shenzhen / "masks" / image.name) for image in images]
    train_tiny_model(folder, "cxr", pairs, steps=150)
    tested = [(str(image), source) for (image, _), source in zip(pairs, ["shenzhen-a"] * 3 + ["shenzhen-b"] * 2)]
    entries = [{"image": str(image), "label": str(label), "source": "shenzhen-c"} for image, label in pairs[5:]]
    entries += [{"image": image, "source": source} for image, source in tested]
    (folder / "datalist.json").write_text(json.dumps({"training": entries}))
    (folder / "eval").mkdir()
    values = [value for source in TEST_DICE for value in TEST_DICE[source]]
    rows = "".join(f"{image},{value},{value}\n" for (image, _), value in zip(tested, values))
    (folder / "eval" / "test_mean_dice_raw.csv").write_text("filename,mean,lungs\n" + rows)
    summary = {"test_mean_dice": {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}}
    (folder / "eval" / "summary.json").write_text(json.dumps(summary))
    return folder


CARD_INFO = {
    "training_command": "python -c 'train_tiny_model(...)' (tests/test_pretrained.py)",
    "training_data": [{"name": "Shenzhen (shared subset)", "cases": 10, "licence": "CC0 1.0", "source": "NLM"}],
    "failure_modes": ["Trained for seconds: a test model, not a segmentation model."],
}


def _ship(model_dir: Path, root: Path, info: Path, **rules: object):
    from medseg.apps.model_card import CardInfo
    from medseg.apps.shipping import ship_model

    return ship_model(model_dir, NAME, EXAMPLES, CardInfo.read(info), root=root, commit="test", **rules)


@pytest.fixture(scope="module")
def trained(real_data, tmp_path_factory) -> dict[str, Path]:
    """A trained folder and its card info."""
    folder = _trained_folder(tmp_path_factory.mktemp("trained"), real_data("cxr_shenzhen"))
    info = folder / "card-info.json"
    info.write_text(json.dumps(CARD_INFO))
    return {"model_dir": folder, "info": info}


@pytest.fixture(scope="module")
def shipped(trained, tmp_path_factory):
    """The tiny model shipped as cxr-lungs, with half precision and the 8-bit network accepted at lower Dice than
    the defaults (a model trained for seconds changes a few boundary pixels): ``(root, report)``."""
    root = tmp_path_factory.mktemp("pretrained")
    report = _ship(trained["model_dir"], root, trained["info"], half_min_dice=0.99, int8_min_dice=0.5)
    return root, report


@pytest.fixture
def pretrained(shipped, monkeypatch) -> Path:
    """``$MEDSEG_PRETRAINED`` set to the fixture's root; the shipped model's folder."""
    monkeypatch.setenv("MEDSEG_PRETRAINED", str(shipped[0]))
    return shipped[0] / NAME


@pytest.fixture
def copied(shipped, tmp_path, monkeypatch) -> Path:
    """A copy of the shipped root (to tamper with) as ``$MEDSEG_PRETRAINED``; the model's folder in it."""
    root = tmp_path / "root"
    shutil.copytree(shipped[0], root)
    monkeypatch.setenv("MEDSEG_PRETRAINED", str(root))
    return root / NAME


def _mask(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refusal(capsys, *argv: object, code: int = 2) -> str:
    """Run ``medseg`` expecting exit ``code`` and one error line (after the usage, for a usage error), no
    traceback; return that line."""
    capsys.readouterr()
    assert medseg(*argv) == code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_shipped_folder_holds_what_its_manifest_says(trained, pretrained):
    manifest = json.loads((pretrained / "manifest.json").read_text())
    files = sorted(path.relative_to(pretrained).as_posix() for path in pretrained.rglob("*") if path.is_file())
    assert sorted(manifest["files"]) == [name for name in files if name != "manifest.json"]
    for relative, entry in manifest["files"].items():
        assert entry == {"sha256": _sha256(pretrained / relative), "size": (pretrained / relative).stat().st_size}
    assert {"models/model.pt", "models/model.onnx", "models/settings.json", "docs/model_card.md"} <= set(files)
    assert {"golden/golden.json", "golden/stamp.json", "golden/inputs/CHNCXR_0001_0.jpg"} <= set(files)
    assert sum((pretrained / name).stat().st_size for name in files) < 10_000_000
    assert manifest["datalist_sha256"] == _sha256(trained["model_dir"] / "datalist.json")
    assert manifest["training_data"] == CARD_INFO["training_data"] and manifest["commit"] == "test"


def test_medseg_models_lists_name_task_labels_input_data_results_and_size(pretrained, capsys):
    capsys.readouterr()
    assert medseg("models") == 0
    out = capsys.readouterr().out
    size = sum(path.stat().st_size for path in pretrained.rglob("*") if path.is_file())
    assert NAME in out and "task cxr, labels lungs" in out and f"{size / 1e6:.2f} MB" in out
    assert "input: cxr 2D images: 1 channel(s)" in out
    assert "Shenzhen (shared subset) (10 cases, CC0 1.0)" in out
    for source, values in TEST_DICE.items():  # mean ± sample SD of the per-case Dice, by hand
        mean, sd = sum(values) / len(values), float(np.std(values, ddof=1))
        assert f"{source}: test_mean_dice {mean:.4f} ± {sd:.4f} ({len(values)} cases)" in out, out
    assert medseg("models", "--json") == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["name"] == NAME and record["size"] == size and record["folder"] == str(pretrained)


def test_no_model_shipped_is_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDSEG_PRETRAINED", str(tmp_path))
    assert medseg("models") == 0
    assert f"no shipped models in {tmp_path}" in capsys.readouterr().out
    err = _refusal(capsys, "infer", "--model", "lungs-x", "--verify")
    assert "no shipped model 'lungs-x'" in err


def test_infer_model_runs_as_model_dir_on_both_runtimes(pretrained, real_data, tmp_path):
    images = sorted((real_data("cxr_shenzhen") / "images").glob("*.jpg"))[-2:]
    folder = tmp_path / "as-folder"
    shutil.copytree(pretrained, folder)
    masks = {}
    for runtime in ("pytorch", "onnxruntime"):
        for how, source in (("model", ("--model", NAME)), ("dir", ("--model-dir", folder))):
            out = tmp_path / f"{how}-{runtime}"
            code = medseg("infer", *source, "--input", *images, "--output", out, "--runtime", runtime,
                          "--uncertainty", "--overlay")  # fmt: skip
            assert code == 0
            assert json.loads((out / "summary.json").read_text())["runtime"] == runtime
            masks[how, runtime] = {path.name: _mask(path) for path in sorted(out.glob("*_seg.nii.gz"))}
            assert len(list(out.glob("*_entropy.nii.gz"))) == len(list(out.glob("*_overlay.png"))) == 2
    assert len(masks["model", "pytorch"]) == 2
    for name, mask in masks["model", "pytorch"].items():
        assert mask.shape == sitk.ReadImage(str(images[0].parent / name.replace("_seg.nii.gz", ".jpg"))).GetSize()
        assert 0.05 < (mask > 0).mean() < 0.7, f"{name}: a trained model's mask, not noise"
        assert np.array_equal(mask, masks["dir", "pytorch"][name])
        assert np.array_equal(masks["model", "onnxruntime"][name], masks["dir", "onnxruntime"][name])
        assert f1_score(mask.ravel() > 0, masks["model", "onnxruntime"][name].ravel() > 0) >= 0.999
    assert not list(pretrained.rglob("summary.json")), "nothing is written into the shipped model's folder"


def test_infer_model_refuses_an_output_inside_the_shipped_folder(pretrained, capsys):
    err = _refusal(capsys, "infer", "--model", NAME, "--input", EXAMPLES[0], "--output", pretrained / "out")
    assert "inside the shipped models' folder" in err


@pytest.mark.parametrize("runtime", ["pytorch", "onnxruntime"])
def test_verify_passes_on_both_runtimes(pretrained, runtime, capsys):
    capsys.readouterr()
    assert medseg("infer", "--model", NAME, "--verify", "--runtime", runtime) == 0
    out = capsys.readouterr().out
    assert f"2 of 2 golden cases as recorded ({runtime} on cpu)" in out


def test_a_tampered_weight_byte_is_refused_by_its_digest(copied, capsys):
    weights = copied / "models" / "model.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    for argv in (("--verify",), ("--input", EXAMPLES[0], "--output", copied.parent.parent / "out")):
        err = _refusal(capsys, "infer", "--model", NAME, *argv)
        assert f"{weights}: SHA-256 differs from the one its manifest records" in err
    assert not (copied.parent.parent / "out").exists()


def test_a_missing_or_added_file_is_refused(copied, capsys):
    (copied / "models" / "extra.pt").write_bytes(b"")
    assert "models/extra.pt: not listed in the model's manifest" in _refusal(
        capsys, "infer", "--model", NAME, "--verify"
    )
    (copied / "models" / "extra.pt").unlink()
    (copied / "golden" / "stamp.json").unlink()
    assert "golden/stamp.json: missing" in _refusal(capsys, "infer", "--model", NAME, "--verify")


def _restamp(folder: Path) -> None:
    """Stamp an edited golden.json as the golden set (what a forger would have to do): count and SHA-256."""
    golden = folder / "golden" / "golden.json"
    cases = json.loads(golden.read_text())
    (folder / "golden" / "stamp.json").write_text(json.dumps({"cases": len(cases), "golden_sha256": _sha256(golden)}))


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda cases: [], "0 golden case(s) where the golden set's stamp records 2"),
        (lambda cases: cases[:1], "1 golden case(s) where the golden set's stamp records 2"),
        (lambda cases: {"cases": cases}, "a list of golden cases is expected, it holds a JSON dict"),
        (lambda cases: [cases[1], cases[1]], "not the golden.json its stamp records"),
        (lambda cases: [{**cases[0], "name": "x"}, cases[1]], "not the golden.json its stamp records"),
    ],
    ids=["emptied", "cut", "not-a-list", "another-case", "renamed"],
)
def test_an_altered_golden_set_is_refused_in_one_line(copied, capsys, edit, expected):
    golden = copied / "golden" / "golden.json"
    golden.write_text(json.dumps(edit(json.loads(golden.read_text()))))
    err = _refusal(capsys, "infer", "--model-dir", copied, "--verify")  # the golden stamp (no manifest here)
    assert str(golden) in err and expected in err, err
    err = _refusal(capsys, "infer", "--model", NAME, "--verify")  # a shipped model: its manifest first
    assert f"{golden}: " in err and "its manifest records" in err, err  # its size, or else its SHA-256


def test_a_restamped_golden_set_pointing_to_another_case_is_refused(copied, capsys):
    golden = copied / "golden" / "golden.json"
    cases = json.loads(golden.read_text())
    golden.write_text(json.dumps([{**cases[0], "name": cases[1]["name"]}, {**cases[1], "name": cases[0]["name"]}]))
    _restamp(copied)
    err = _refusal(capsys, "infer", "--model-dir", copied, "--verify")
    assert f"{golden}: the entry {cases[1]['name']} points to another case's files" in err
    golden.write_text(json.dumps([cases[0], {**cases[1], "input": cases[0]["input"]}]))
    _restamp(copied)
    assert "two golden cases share the input" in _refusal(capsys, "infer", "--model-dir", copied, "--verify")


def test_a_golden_mask_of_another_size_fails_its_case_without_a_traceback(copied, capsys):
    golden = copied / "golden" / "golden.json"
    cases = json.loads(golden.read_text())
    expected = copied / cases[0]["expected"]
    sitk.WriteImage(sitk.Image(10, 12, sitk.sitkUInt8), str(expected))
    err = _refusal(capsys, "infer", "--model-dir", copied, "--verify")
    assert f"{expected}: not the expected mask golden.json records" in err
    cases[0]["expected_sha256"] = _sha256(expected)  # the forger's next step: digests made to match
    golden.write_text(json.dumps(cases))
    _restamp(copied)
    capsys.readouterr()
    assert medseg("infer", "--model-dir", copied, "--verify") == 1
    out = capsys.readouterr().out
    assert f"FAILED  {cases[0]['name']}: {expected}: masks of different shapes" in out
    assert "1 of 2 golden cases as recorded" in out


def test_onnx_without_its_stamps_graph_or_weights_is_refused(copied, capsys):
    import onnx
    from onnx import numpy_helper

    onnx_file, weights = copied / "models" / "model.onnx", copied / "models" / "model.pt"
    original = onnx_file.read_bytes()
    argv = ("infer", "--model-dir", copied, "--runtime", "onnxruntime")
    run = (*argv, "--input", EXAMPLES[0], "--output", copied.parent.parent / "out")
    for key in (STAMP_KEY, WEIGHTS_KEY, GRAPH_KEY):
        model = onnx.load(str(onnx_file))
        kept = [entry for entry in model.metadata_props if entry.key != key]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        onnx.save(model, str(onnx_file))
        for command in (run, (*argv, "--verify")):
            err = _refusal(capsys, *command)
            assert f"{onnx_file}: carries no {key}" in err, err
        onnx_file.write_bytes(original)
    model = onnx.load(str(onnx_file))  # a weight edited, the stamps kept
    initializer = max(model.graph.initializer, key=lambda tensor: int(np.prod(tensor.dims)))
    array = numpy_helper.to_array(initializer).copy()
    array.flat[0] += 1.0
    initializer.CopyFrom(numpy_helper.from_array(array, initializer.name))
    onnx.save(model, str(onnx_file))
    assert f"{onnx_file}: its graph (operators and weights) is not the one" in _refusal(capsys, *run)
    onnx_file.write_bytes(original)
    weights.unlink()  # an ONNX-only deployment
    for command in (run, (*argv, "--verify")):
        err = _refusal(capsys, *command)
        assert f"{weights}: missing: an ONNX export runs only beside the weights" in err, err
    assert not (copied.parent.parent / "out").exists()


def test_half_precision_weights_are_the_float32_ones_rounded(trained, pretrained, shipped):
    """The shipped ``model.pt`` stores float16 (loaded with weights_only=True), each tensor the trained float32 one
    rounded; read back as float32; the manifest's recorded Dice of half against full precision is scikit-learn's
    on the golden masks of both."""
    original = torch.load(trained["model_dir"] / "models" / "model.pt", weights_only=True)
    stored = torch.load(pretrained / "models" / "model.pt", weights_only=True)
    assert json.loads((pretrained / "manifest.json").read_text())["weights_precision"] == "float16"
    for name, value in original.items():
        if value.dtype == torch.float32:
            assert stored[name].dtype == torch.float16 and torch.equal(stored[name], value.half())
    read = read_state_dict(pretrained / "models" / "model.pt")
    assert all(value.dtype != torch.float16 for value in read.values())
    report = shipped[1]
    assert report.manifest.checks["half_precision_min_dice"] == pytest.approx(min(report.half_dice), abs=1e-6)


def test_half_precision_masks_match_float32_as_recorded(trained, pretrained, tmp_path):
    masks = {}
    for how, source in (("float32", ("--model-dir", trained["model_dir"])), ("float16", ("--model", NAME))):
        assert medseg("infer", *source, "--input", *EXAMPLES, "--output", tmp_path / how) == 0
        masks[how] = {path.name: _mask(path) for path in sorted((tmp_path / how).glob("*_seg.nii.gz"))}
    dice = [
        f1_score(masks["float32"][name].ravel() > 0, masks["float16"][name].ravel() > 0) for name in masks["float32"]
    ]
    recorded = json.loads((pretrained / "manifest.json").read_text())["checks"]["half_precision_min_dice"]
    assert len(dice) == 2 and min(dice) == pytest.approx(recorded, abs=1e-5)
    assert min(dice) >= 0.99  # the fixture's rule


def test_the_8bit_network_runs_and_says_so(pretrained, tmp_path):
    import onnx

    from medseg.cli.infer import RUNTIME_CHOICES
    from medseg.inference import RUNTIMES

    assert set(RUNTIME_CHOICES) == set(RUNTIMES)  # --runtime offers what the library runs
    int8 = pretrained / "models" / "model.int8.onnx"
    assert json.loads((pretrained / "manifest.json").read_text())["runtimes"] == ["pytorch", "onnxruntime",
                                                                                 "onnxruntime-int8"]  # fmt: skip
    model = onnx.load(str(int8))
    assert QUANTIZED_KEY in {entry.key for entry in model.metadata_props}
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in model.graph.node}
    out = tmp_path / "int8"
    assert medseg("infer", "--model", NAME, "--input", EXAMPLES[0], "--output", out, "--runtime",
                  "onnxruntime-int8") == 0  # fmt: skip
    assert json.loads((out / "summary.json").read_text())["cases"][0]["status"] == "ok"


def test_demo_segments_the_example_with_the_shipped_model_or_says_it_is_not_shipped(
    pretrained, tmp_path, monkeypatch, capsys
):
    capsys.readouterr()
    assert medseg("demo", "--example-only", "--out", tmp_path / "demo") == 0
    out = capsys.readouterr().out
    mask, overlay = tmp_path / "demo" / "example" / "CHNCXR_0001_0_seg.nii.gz", tmp_path / "demo" / "example"
    assert f"mask {mask}" in out and f"overlay {overlay / 'CHNCXR_0001_0_overlay.png'}" in out
    assert mask.is_file() and (overlay / "CHNCXR_0001_0_overlay.png").is_file()
    monkeypatch.setenv("MEDSEG_PRETRAINED", str(tmp_path / "none"))
    assert medseg("demo", "--example-only", "--out", tmp_path / "demo2") == 0
    assert "the shipped model cxr-lungs is not in this medseg" in capsys.readouterr().out


def test_ship_model_refuses_card_info_without_licences_and_a_name_taken(trained, shipped, tmp_path, capsys):
    import ship_model

    info = tmp_path / "info.json"
    info.write_text(json.dumps({**CARD_INFO, "training_data": [{"name": "x", "cases": 3}]}))
    argv = ["--model-dir", str(trained["model_dir"]), "--name", NAME, "--golden", *map(str, EXAMPLES)]
    capsys.readouterr()
    assert ship_model.main([*argv, "--card-info", str(info), "--root", str(tmp_path / "root")]) == 1
    assert "training_data must list each data source with its licence" in capsys.readouterr().err
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir())
    assert ship_model.main([*argv, "--card-info", str(trained["info"]), "--root", str(shipped[0])]) == 1
    assert "a model of that name is shipped; give --overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_default_rules_keep_float32_and_drop_an_8bit_network_that_changes_the_masks(trained, tmp_path):
    """With the defaults, half precision is stored only when no golden pixel changes and the 8-bit network only
    when every golden mask keeps Dice >= 0.99; the tiny model's fixture figures say neither holds."""
    report = _ship(trained["model_dir"], tmp_path, trained["info"])
    manifest = json.loads((tmp_path / NAME / "manifest.json").read_text())
    assert (min(report.half_dice) < 1.0) == (manifest["weights_precision"] == "float32")
    assert (min(report.int8_dice) < 0.99) == ("onnxruntime-int8" not in manifest["runtimes"])
    assert (tmp_path / NAME / "models" / "model.int8.onnx").is_file() == ("onnxruntime-int8" in manifest["runtimes"])
    state = torch.load(tmp_path / NAME / "models" / "model.pt", weights_only=True)
    assert {value.dtype for value in state.values() if value.is_floating_point()} == {
        torch.float16 if manifest["weights_precision"] == "float16" else torch.float32
    }
